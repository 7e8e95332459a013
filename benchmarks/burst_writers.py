"""The writers of a burst (benchmarks/burst.py), in a process of their own: a backfill script
and the users clicking are not inside GMS. In the burst's own process they shared one GIL with
the in-process GMS double, whose every answer then waited for the writers' SDK work (about
half of the CPU of a write, benchmarks/gms_double_writes.py `--writer-process`).

    python -m benchmarks.burst_writers   (its job as one JSON document on stdin)

It builds and warms its clients, prints `ready`, waits for the start time on stdin, writes
the burst's requests on their schedule (4 threads) and the lone clicks (1 thread), then prints
one JSON document: every request's run id, kind, write time, and how long GMS took to answer.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import DataHubSettings

WRITER_THREADS = 4


def write(
    client: DataHubClient, dataset: str, executor: str, source: SourceType
) -> tuple[float, str, float]:
    """One request, as the api or the SDK writes it: (written at, run id, seconds to answer)."""
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=dataset,
        executor_id=executor,
        source_type=source.value,
        requested_at_ms=now_ms(),
        actor_urn="urn:li:corpuser:alice",
    )
    written_at = time.time()
    client.write_request(request)
    return written_at, request.run_id, time.time() - written_at


def main() -> None:
    job: dict[str, Any] = json.loads(sys.stdin.readline())
    settings = DataHubSettings(
        gms_url=job["gms_url"], gms_token=job["gms_token"], executor_id=job["executor"]
    )
    datasets: list[str] = job["datasets"]  # the n-th request goes to datasets[n]
    kinds: list[str] = job["kinds"]
    source = SourceType(job["source"])
    seconds, singles = float(job["seconds"]), int(job["singles"])
    clients = [DataHubClient(settings) for _ in range(WRITER_THREADS + 1)]
    for client in clients:
        client.warm()  # the api is warm when it answers (issue 25)
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    written: list[dict[str, Any]] = []
    lock = threading.Lock()

    def writer(client: DataHubClient, indexes: range) -> None:
        for n in indexes:
            wait = start + n * seconds / len(datasets) - time.time()
            if wait > 0:
                time.sleep(wait)
            at, run_id, took = write(client, datasets[n], job["executor"], source)
            with lock:
                written.append({"run_id": run_id, "kind": kinds[n], "at": at, "took": took})

    def clicks(client: DataHubClient) -> None:
        for k in range(singles):
            wait = start + (k + 0.5) * seconds / singles - time.time()
            if wait > 0:
                time.sleep(wait)
            at, run_id, took = write(client, job["single_dataset"], job["executor"], SourceType.API)
            with lock:
                written.append({"run_id": run_id, "kind": "single", "at": at, "took": took})

    threads = [
        threading.Thread(target=writer, args=(clients[w], range(w, len(datasets), WRITER_THREADS)))
        for w in range(WRITER_THREADS)
    ]
    threads.append(threading.Thread(target=clicks, args=(clients[-1],)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in clients:
        client.close()
    print(json.dumps(written), flush=True)


if __name__ == "__main__":
    main()
