"""What the consumer warms before `/readyz` says ready (issue 25), in the order a run needs it:

1. identity: who the service token is (GraphQL `me`), which the authorisation of every run
   request needs (authorize.py; looked up lazily before, on the first run);
2. datahub: the SDK's connection pool and its GMS /config (lambda_trigger.datahub.warm);
3. schema_registry: the MCL topic's latest schema, which the first run request's record
   would otherwise wait for;
4. aws: a client and an open connection for every mapped target, the synchronous
   functions' timeouts, and the run's own call (Invoke, StartExecution) rehearsed without
   being sent, which does botocore's first-call work for it (Invoker.warm, aws_rehearsal.py);
5. threads: the run driver's step and invoke threads, the history writer and the status
   writer (RunDriver.warm), made on the first run otherwise.

The clients live as long as the process: a rebalance changes which runs this consumer drives,
not its clients, so nothing is cold after one. Every `keep_warm_seconds` (and after a mapping
reload, whose new targets need clients) the steps run again, which renews the functions'
cached timeouts before they lapse and keeps idle connections from being closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping import LambdaTarget, Mapping, StepFunctionsTarget
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.warmup import Step, Warmup, release_free_memory
from lambda_trigger_consumer.authorize import Authorizer
from lambda_trigger_consumer.decode import Registry, RegistryUnavailable, SchemaRegistry
from lambda_trigger_consumer.invoke import Invoker
from lambda_trigger_consumer.ledger import Target

# A mapping may name hundreds of functions; the warm-up reads at most this many functions'
# timeouts per pass (GetFunctionConfiguration shares Lambda's control-plane rate limit with
# the runs' own reads). Connections are per client, so they are warm anyway.
MAX_WARM_TARGETS = 50


def mapped_targets(mapping: Mapping) -> list[Target]:
    """Every target the mapping names (named, inline in rules, the default), as the run
    driver resolves them (kind, function, qualifier, region); without duplicates."""
    doc = mapping.document
    found: list[LambdaTarget | StepFunctionsTarget] = list(doc.targets.values())
    found += [r.target for r in doc.rules if not isinstance(r.target, str)]
    if doc.default is not None and not isinstance(doc.default, str):
        found.append(doc.default)
    out: dict[tuple[str, str | None, str | None, str | None], Target] = {}
    for t in found:
        if isinstance(t, LambdaTarget):
            kind = "lambda-event" if t.invocation_type == "Event" else "lambda"
            key = (kind, t.function, t.qualifier, t.region)
            out.setdefault(
                key,
                Target(
                    kind=kind,
                    key=t.function,
                    label=t.label or "",
                    matched_by="warm-up",
                    function=t.function,
                    qualifier=t.qualifier,
                    region=t.region,
                ),
            )
        else:
            key = ("stepfunctions", t.state_machine_arn, None, t.region)
            out.setdefault(
                key,
                Target(
                    kind="stepfunctions",
                    key=t.state_machine_arn,
                    label=t.label or "",
                    matched_by="warm-up",
                    state_machine_arn=t.state_machine_arn,
                    region=t.region,
                ),
            )
    return list(out.values())


def _warm_datahub(datahub: DataHubClient, mapping: Mapping) -> None:
    """The SDK's pool and /config, then the reads a run request's checks make (the dataset's
    key and status aspects, decoded), on a dataset the mapping names, if it names one."""
    datahub.warm()
    dataset = next((r.dataset for r in mapping.document.rules if r.dataset), None)
    if dataset is not None:
        datahub.dataset_state(dataset)


def consumer_warmup(
    *,
    authorizer: Authorizer | None,
    datahub: DataHubClient,
    registry: Registry,
    topic: str,
    invoker: Invoker,
    mappings: MappingSource,
    stop: threading.Event,
    keep_warm_seconds: float,
    threads: Callable[[], object] | None = None,
) -> Warmup:
    steps: list[Step] = []
    if authorizer is not None:
        steps.append(("identity", authorizer.service_actor))
    steps.append(("datahub", lambda: _warm_datahub(datahub, mappings.current())))
    steps.append(("schema_registry", lambda: _warm_registry(registry, topic)))
    steps.append(
        (
            "aws",
            lambda: invoker.warm(mapped_targets(mappings.current())[:MAX_WARM_TARGETS]),
        )
    )
    if threads is not None:
        steps.append(("threads", threads))
    return Warmup(
        steps,
        stop=stop,
        keep_warm_seconds=keep_warm_seconds,
        name="consumer warm-up",
        on_done=release_free_memory,
    )


def _warm_registry(registry: Registry, topic: str) -> None:
    """A Confluent-framed registry (INTERNAL, KAFKA) prefetches the topic's latest schema; a
    Glue registry cannot be asked "latest" by topic without a registry name, so it is only
    probed (its client and connection are then open; the first record fetches its schema)."""
    if isinstance(registry, SchemaRegistry):
        registry.prefetch(f"{topic}-value")
        return
    reason = registry.probe()
    if reason is not None:
        raise RegistryUnavailable(reason)
