"""What the api warms before `/readyz` answers 200 (issue 25): the first click after a start or
a deploy must not pay for the DataHub clients' set-up.

- identity: the connections the caller checks (GraphQL `me`) go over (identity.py);
- datahub: the SDK's connection pool, its GMS /config (fetched lazily on the first write
  otherwise) and one read (lambda_trigger.datahub.warm);
- search: one search for running runs, the query every run request makes first
  (service.active_run), through the SDK's GraphQL path.
"""

from __future__ import annotations

import threading

from lambda_trigger.datahub import DataHubClient
from lambda_trigger.warmup import Warmup
from lambda_trigger_api.identity import IdentityClient


def api_warmup(datahub: DataHubClient, identity: IdentityClient, stop: threading.Event) -> Warmup:
    return Warmup(
        [
            ("identity", identity.warm),
            ("datahub", datahub.warm),
            ("search", lambda: datahub.running_run_ids(limit=1)),
        ],
        stop=stop,
        name="api warm-up",
    )
