"""The current mapping, reloaded when its file changes.

A reload that fails keeps the previous mapping (a typo in production must not stop runs
that worked a minute ago); the failure is logged and reported through `on_reload`. At start
a bad mapping is fatal instead: `MappingSource(...)` raises MappingError.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from lambda_trigger.mapping import Mapping, MappingError
from lambda_trigger.settings import MappingSettings

log = logging.getLogger(__name__)


class MappingSource:
    def __init__(
        self,
        settings: MappingSettings,
        *,
        reload_seconds: float = 10.0,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self._settings = settings
        self._reload_seconds = reload_seconds
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._mapping = settings.load()
        self._mtime = self._file_mtime()
        self._checked = time.monotonic()

    def _file_mtime(self) -> float | None:
        path = self._settings.mapping_file
        if not path:
            return None
        try:
            return os.stat(path).st_mtime
        except OSError:
            return None

    def current(self) -> Mapping:
        if self._settings.mapping_file and time.monotonic() - self._checked >= self._reload_seconds:
            self.reload_if_changed()
        return self._mapping

    def reload_if_changed(self) -> bool:
        """Returns True when a new mapping was installed."""
        with self._lock:
            self._checked = time.monotonic()
            mtime = self._file_mtime()
            if mtime == self._mtime:
                return False
            self._mtime = mtime
            try:
                mapping = self._settings.load()
            except MappingError as exc:
                log.error("mapping reload failed, keeping the previous mapping: %s", exc)
                if self._on_reload:
                    self._on_reload(False)
                return False
            self._mapping = mapping
            log.info("mapping reloaded from %s", mapping.source)
            if self._on_reload:
                self._on_reload(True)
            return True
