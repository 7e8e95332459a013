"""Serves the run panel's micro-frontend bundle, so DataHub can load it without another server.

DataHub's MFE host (datahub-web-react/src/app/mfeframework/MFEConfigurableContainer.tsx) loads
a remote by adding a ``<script src=remoteEntry.js>`` and then the chunks webpack asks for, next
to it. The bundle is built by ``frontend-patch/mfe/build.mjs`` (``make mfe``) into
``mfe_dist/`` beside this module, or into the folder named by ``LAMBDA_TRIGGER_MFE_DIR``.

- ``remoteEntry.js`` keeps its name across releases, so browsers must revalidate it
  (``no-cache`` plus an ETag): a new release is picked up on the next page load.
- Chunks are named by content hash, so they are cached for a year and marked immutable.
- Only ``*.js`` files directly in the folder are served; no listing, no other path.
- No authentication: a script tag sends no bearer token, and the bundle holds no data or
  secrets. Every call the bundle makes goes to the authenticated endpoints.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Response

from lambda_trigger_api.errors import ApiError

MFE_PREFIX = "/api/ingestion/mfe"
MFE_DIR_ENV = "LAMBDA_TRIGGER_MFE_DIR"
REMOTE_ENTRY = "remoteEntry.js"
DEFAULT_DIR = Path(__file__).resolve().parent / "mfe_dist"

JS_CONTENT_TYPE = "text/javascript; charset=utf-8"
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

# A file name webpack writes: no directory parts, no leading dot, ends in .js.
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.js$")


@dataclass(frozen=True)
class _Asset:
    body: bytes
    etag: str
    mtime_ns: int
    size: int


class MfeBundle:
    """The built files, read on first use and again when a file changes on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, _Asset] = {}

    def get(self, name: str) -> _Asset | None:
        if not _ASSET_NAME.fullmatch(name):
            return None
        path = self.directory / name
        try:
            stat = path.stat()
        except OSError:
            self._cache.pop(name, None)
            return None
        if not path.is_file():
            return None
        cached = self._cache.get(name)
        if cached and cached.mtime_ns == stat.st_mtime_ns and cached.size == stat.st_size:
            return cached
        body = path.read_bytes()
        asset = _Asset(
            body=body,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            mtime_ns=stat.st_mtime_ns,
            size=stat.st_size,
        )
        self._cache[name] = asset
        return asset


def bundle_dir() -> Path:
    configured = os.environ.get(MFE_DIR_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_DIR


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def mfe_router(directory: Path | None = None) -> APIRouter:
    """``GET|HEAD /api/ingestion/mfe/{file}.js``: remoteEntry.js and its chunks."""
    bundle = MfeBundle(directory or bundle_dir())
    router = APIRouter()

    @router.api_route(MFE_PREFIX + "/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def mfe_asset(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
        asset = bundle.get(name)
        if asset is None:
            if name == REMOTE_ENTRY:
                raise ApiError(
                    404,
                    "mfe_not_built",
                    "The micro-frontend bundle is not built: run `make mfe` "
                    f"(or set {MFE_DIR_ENV} to the folder holding remoteEntry.js).",
                )
            raise ApiError(404, "not_found", f"No micro-frontend file {name!r}")
        headers = {
            "Cache-Control": REVALIDATE if name == REMOTE_ENTRY else IMMUTABLE,
            "ETag": asset.etag,
            "X-Content-Type-Options": "nosniff",
        }
        if _etag_matches(if_none_match, asset.etag):
            return Response(status_code=304, headers=headers)
        return Response(content=asset.body, media_type=JS_CONTENT_TYPE, headers=headers)

    return router
