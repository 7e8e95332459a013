"""Settings read from the environment, shared by the api and the consumer.

Names honour the seed plan (`DATAHUB_INGESTION_LAMBDA_*`, `DATAHUB_INGESTION_JOB_ARN_PROPERTY_URN`)
and the names DataHub's own containers use (`DATAHUB_GMS_URL`, `KAFKA_BOOTSTRAP_SERVERS`,
`SCHEMA_REGISTRY_URL`, `METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME`). docs/configuration.md
lists every variable; keep it in step with this file (tests/docs/test_configuration.py checks).
"""

from __future__ import annotations

import os
from typing import Literal, Self

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambda_trigger.contract import DEFAULT_EXECUTOR_ID
from lambda_trigger.mapping import Mapping, load_mapping
from lambda_trigger.registry_auth import split_url_credentials


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)


class DataHubSettings(_Settings):
    gms_url: str = Field("http://localhost:8080", validation_alias="DATAHUB_GMS_URL")
    # Service token the services write with (the caller's identity goes into actorUrn).
    gms_token: str | None = Field(None, validation_alias="DATAHUB_GMS_TOKEN")
    # datahub-frontend, to identify browser callers by their session cookie.
    frontend_url: str | None = Field(None, validation_alias="DATAHUB_FRONTEND_URL")
    timeout_seconds: float = Field(10.0, validation_alias="DATAHUB_TIMEOUT_SECONDS")
    executor_id: str = Field(DEFAULT_EXECUTOR_ID, validation_alias="LAMBDA_TRIGGER_EXECUTOR_ID")


class MappingSettings(_Settings):
    mapping_inline: str | None = Field(None, validation_alias="DATAHUB_INGESTION_LAMBDA_MAPPING")
    mapping_file: str | None = Field(None, validation_alias="DATAHUB_INGESTION_LAMBDA_MAPPING_FILE")
    default_lambda: str | None = Field(None, validation_alias="DATAHUB_INGESTION_LAMBDA_DEFAULT")
    region: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "DATAHUB_INGESTION_LAMBDA_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"
        ),
    )
    # Structured property on a DataJob holding a Step Functions state machine ARN: when a
    # run names a jobUrn whose job has it, that state machine is started instead of the mapping.
    job_arn_property_urn: str | None = Field(
        None, validation_alias="DATAHUB_INGESTION_JOB_ARN_PROPERTY_URN"
    )

    def load(self) -> Mapping:
        return load_mapping(self.mapping_file, self.mapping_inline, self.default_lambda)

    def resolved_region(self) -> str | None:
        # AliasChoices takes the first one set, in the order given; spelled out again here
        # for readers who look for the fallback rule.
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


class ApiSettings(_Settings):
    host: str = Field("0.0.0.0", validation_alias="LAMBDA_TRIGGER_API_HOST")
    port: int = Field(8000, validation_alias="LAMBDA_TRIGGER_API_PORT")
    # What a caller needs: DataHub's `manageIngestion` platform privilege (default), or
    # only to be a signed-in DataHub user.
    required_privilege: Literal["manageIngestion", "authenticated"] = Field(
        "manageIngestion", validation_alias="LAMBDA_TRIGGER_API_REQUIRED_PRIVILEGE"
    )
    # Local stack only: skip caller identification. Logged loudly at start and on every request.
    dev_mode_no_auth: bool = Field(False, validation_alias="LAMBDA_TRIGGER_API_DEV_MODE_NO_AUTH")
    dev_actor_urn: str = Field(
        "urn:li:corpuser:datahub", validation_alias="LAMBDA_TRIGGER_API_DEV_ACTOR"
    )
    # Refused before parsing (413): the api's bodies are a few hundred bytes.
    max_body_bytes: int = Field(
        16 * 1024, ge=1024, validation_alias="LAMBDA_TRIGGER_API_MAX_BODY_BYTES"
    )
    # Runs one caller may start per window (429 with Retry-After beyond); 0 turns it off.
    rate_limit_runs: int = Field(20, ge=0, validation_alias="LAMBDA_TRIGGER_API_RATE_LIMIT_RUNS")
    rate_limit_window_seconds: float = Field(
        60.0, gt=0, validation_alias="LAMBDA_TRIGGER_API_RATE_LIMIT_WINDOW_SECONDS"
    )
    # Probe GMS with a made-up token at start; if it is accepted (authentication off),
    # refuse Bearer callers. Off only for tests of the probe itself.
    detect_auth_off: bool = Field(True, validation_alias="LAMBDA_TRIGGER_API_DETECT_AUTH_OFF")
    # Issue 19 (docs/security-api.md). /metrics: on the api port (unset), on a port of its
    # own, or off; /docs and /openapi.json: off unless asked for.
    metrics_port: int | None = Field(
        None, ge=1, le=65535, validation_alias="LAMBDA_TRIGGER_API_METRICS_PORT"
    )
    metrics_enabled: bool = Field(True, validation_alias="LAMBDA_TRIGGER_API_METRICS_ENABLED")
    docs_enabled: bool = Field(False, validation_alias="LAMBDA_TRIGGER_API_DOCS_ENABLED")
    # Origins (scheme://host[:port]) a cookie-authenticated POST may come from besides the
    # api's own (Host / X-Forwarded-Host); comma-separated.
    allowed_origins: str = Field("", validation_alias="LAMBDA_TRIGGER_API_ALLOWED_ORIGINS")
    # The principal of the api's DATAHUB_GMS_TOKEN (default: asked of GMS): requests it wrote
    # carry the checked caller as actorUrn, as the consumer believes (same setting name).
    service_actor: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_API_SERVICE_ACTOR")
    # "Run with upstream": how many lineage hops a plan follows when the caller names no maxDepth
    upstream_max_depth: int = Field(
        3, ge=1, le=5, validation_alias="LAMBDA_TRIGGER_UPSTREAM_MAX_DEPTH"
    )


class ConsumerSettings(_Settings):
    # DataHub's own containers and Helm chart say KAFKA_BOOTSTRAP_SERVER (singular), so a pod
    # that shares their environment works as it is; the plural, this project's older name, wins
    # when both are set.
    bootstrap_servers: str = Field(
        "localhost:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVER"),
    )
    # DataHub's names (docs/schema-registries.md): datahub-actions reads SCHEMA_REGISTRY_URL,
    # GMS KAFKA_SCHEMAREGISTRY_URL. Credentials in it are moved out (_url_user_info) on reading.
    schema_registry_url: str = Field(
        "http://localhost:8080/schema-registry/api/",
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "KAFKA_SCHEMAREGISTRY_URL"),
    )
    # INTERNAL (GMS's) and KAFKA (Confluent-compatible) are Confluent-framed; AWS_GLUE is not.
    schema_registry_type: Literal["INTERNAL", "KAFKA", "AWS_GLUE"] = Field(
        "INTERNAL", validation_alias="SCHEMA_REGISTRY_TYPE"
    )
    schema_registry_user_info: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO",
            "KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO",
            "SPRING_KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO",
        ),
    )
    schema_registry_user_info_file: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO_FILE"
    )
    schema_registry_bearer_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN",
            "KAFKA_PROPERTIES_BEARER_AUTH_TOKEN",
            "SPRING_KAFKA_PROPERTIES_BEARER_AUTH_TOKEN",
        ),
    )
    schema_registry_bearer_token_file: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN_FILE"
    )
    # AWS_GLUE: DataHub's region setting; unset, the consumer's AWS region.
    glue_registry_region: str | None = Field(
        None, validation_alias="AWS_GLUE_SCHEMA_REGISTRY_REGION"
    )
    _url_user_info: SecretStr | None = PrivateAttr(None)

    @field_validator("schema_registry_type", mode="before")
    @classmethod
    def _type_upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _credentials_out_of_url(self) -> Self:
        # Before anything can print the URL (registry_auth.py says why).
        clean, user_info = split_url_credentials(self.schema_registry_url)
        if user_info is not None:
            self.schema_registry_url = clean
            self._url_user_info = SecretStr(user_info)
        return self

    @property
    def schema_registry_url_user_info(self) -> str | None:
        return self._url_user_info.get_secret_value() if self._url_user_info else None

    topic: str = Field(
        "MetadataChangeLog_Versioned_v1",
        validation_alias="METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME",
    )
    group_id: str = Field(
        "datahub-lambda-trigger", validation_alias="LAMBDA_TRIGGER_CONSUMER_GROUP"
    )
    dead_letter_topic: str = Field(
        "DataHubLambdaTrigger_DeadLetter_v1", validation_alias="LAMBDA_TRIGGER_DEAD_LETTER_TOPIC"
    )
    # Extra librdkafka properties as JSON (security.protocol, sasl.*, ...).
    kafka_config_json: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_KAFKA_CONFIG")
    # Synchronous invokes at once, at most (threads made on demand; fewer while Lambda throttles).
    # 256: a quarter of a new AWS account's 1,000 concurrent executions a region, so a burst of
    # slow functions is not queued here below what the account allows (issue 24), and
    # Lambda's 429 lowers it (invoke_limit.py) when the account is busier.
    max_inflight: int = Field(256, ge=1, le=1024, validation_alias="LAMBDA_TRIGGER_MAX_INFLIGHT")
    http_host: str = Field("0.0.0.0", validation_alias="LAMBDA_TRIGGER_CONSUMER_HTTP_HOST")
    http_port: int = Field(9102, validation_alias="LAMBDA_TRIGGER_CONSUMER_HTTP_PORT")
    commit_interval_seconds: float = Field(
        1.0, validation_alias="LAMBDA_TRIGGER_COMMIT_INTERVAL_SECONDS"
    )
    shutdown_grace_seconds: float = Field(
        30.0, validation_alias="LAMBDA_TRIGGER_SHUTDOWN_GRACE_SECONDS"
    )
    mapping_reload_seconds: float = Field(
        10.0, validation_alias="LAMBDA_TRIGGER_MAPPING_RELOAD_SECONDS"
    )
    report_payload_bytes: int = Field(4000, validation_alias="LAMBDA_TRIGGER_REPORT_PAYLOAD_BYTES")
    # Silence before the first TCP keepalive probe on AWS connections (aws_client.Keepalive):
    # below the idle timeout of every NAT gateway / firewall between the consumer and AWS.
    aws_keepalive_seconds: int = Field(
        60, ge=1, le=3600, validation_alias="LAMBDA_TRIGGER_AWS_KEEPALIVE_SECONDS"
    )
    # A new group starts at the beginning, so a request written before the consumer's first
    # start is not lost; old ones are then skipped (claimed) or expired, never fired late.
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", validation_alias="LAMBDA_TRIGGER_AUTO_OFFSET_RESET"
    )
    max_request_age_seconds: float = Field(
        3600.0, validation_alias="LAMBDA_TRIGGER_MAX_REQUEST_AGE_SECONDS"
    )
    # The run ledger (compacted; see consumer/lambda_trigger_consumer/ledger.py) and the
    # partitions and replication of the topics the consumer creates when they are missing.
    runs_topic: str = Field(
        "DataHubLambdaTrigger_Runs_v1", validation_alias="LAMBDA_TRIGGER_RUNS_TOPIC"
    )
    # Lineage triggers (docs/triggers.md): DataHub's timeseries MCL topic (`operation`), and a
    # bound on triggered runs per minute for this consumer process (a trigger storm's cap).
    timeseries_topic: str = Field(
        "MetadataChangeLog_Timeseries_v1",
        validation_alias="METADATA_CHANGE_LOG_TIMESERIES_TOPIC_NAME",
    )
    triggers_per_minute: int = Field(
        60, ge=1, le=100000, validation_alias="LAMBDA_TRIGGER_TRIGGERS_PER_MINUTE"
    )
    topic_partitions: int = Field(
        3, ge=1, le=1000, validation_alias="LAMBDA_TRIGGER_TOPIC_PARTITIONS"
    )
    # Unset: min(3, number of brokers) (consumer/lambda_trigger_consumer/topics.py).
    topic_replication: int | None = Field(
        None, ge=1, le=10, validation_alias="LAMBDA_TRIGGER_TOPIC_REPLICATION"
    )
    # False: the consumer creates no topic (and needs no CreateTopic right); missing ones stop it.
    create_topics: bool = Field(True, validation_alias="LAMBDA_TRIGGER_CREATE_TOPICS")
    # SQS queue that Event Lambdas' OnSuccess/OnFailure destinations write to.
    completion_queue_url: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_COMPLETION_QUEUE_URL"
    )
    # Static group membership (KIP-345): a restarted consumer with the same id gets its
    # partitions back at once. Set it to a stable name per replica (a StatefulSet pod name).
    group_instance_id: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_GROUP_INSTANCE_ID")
    # How long Kafka waits for a silent member before moving its partitions: a SIGKILLed
    # consumer's runs are picked up after this (librdkafka's default is 45 s).
    session_timeout_ms: int = Field(
        10000, ge=1000, validation_alias="LAMBDA_TRIGGER_SESSION_TIMEOUT_MS"
    )
    sync_margin_seconds: float = Field(
        60.0, ge=0, validation_alias="LAMBDA_TRIGGER_SYNC_MARGIN_SECONDS"
    )
    async_max_seconds: float = Field(
        7 * 3600.0, gt=0, validation_alias="LAMBDA_TRIGGER_ASYNC_MAX_SECONDS"
    )
    sfn_max_seconds: float = Field(
        24 * 3600.0, gt=0, validation_alias="LAMBDA_TRIGGER_SFN_MAX_SECONDS"
    )
    throttle_retry_seconds: float = Field(
        900.0, ge=0, validation_alias="LAMBDA_TRIGGER_THROTTLE_RETRY_SECONDS"
    )
    # How often GMS, the schema registry and AWS are probed for /readyz and dependency_up.
    dependency_probe_seconds: float = Field(
        10.0, gt=0, validation_alias="LAMBDA_TRIGGER_DEPENDENCY_PROBE_SECONDS"
    )
    # One active run per dataset and target; a second request ends DUPLICATE.
    one_active_run: bool = Field(True, validation_alias="LAMBDA_TRIGGER_ONE_ACTIVE_RUN")
    # DescribeExecution calls a second for all tracked Step Functions executions together
    # (the quota is a token bucket per account and region, shared by every consumer).
    sfn_poll_rate: float = Field(5.0, gt=0, validation_alias="LAMBDA_TRIGGER_SFN_POLL_RATE")
    # An EventBridge rule sends Step Functions status changes to the completion queue: a run
    # ends when its event arrives and DescribeExecution is only a safety net, every
    # LAMBDA_TRIGGER_SFN_EVENTS_POLL_SECONDS (docs/triggering.md).
    sfn_status_events: bool = Field(False, validation_alias="LAMBDA_TRIGGER_SFN_STATUS_EVENTS")
    sfn_events_poll_seconds: float = Field(
        900.0, gt=0, validation_alias="LAMBDA_TRIGGER_SFN_EVENTS_POLL_SECONDS"
    )
    # Threads of the run driver's quick steps (checks, claims, status writes, polls).
    step_threads: int = Field(16, ge=1, le=256, validation_alias="LAMBDA_TRIGGER_STEP_THREADS")
    # Claims in DataHub at once, at most; waiting ones go in by priority (step_queue.py).
    max_claims: int = Field(8, ge=1, le=256, validation_alias="LAMBDA_TRIGGER_MAX_CLAIMS")
    # Final status writes of many runs in one GMS call (status_writer.py): how long the first
    # waits for others (ms; 0 writes each alone) and how many runs one call carries.
    status_batch_ms: float = Field(
        5.0, ge=0, le=1000, validation_alias="LAMBDA_TRIGGER_STATUS_BATCH_MS"
    )
    status_batch_max: int = Field(
        50, ge=1, le=500, validation_alias="LAMBDA_TRIGGER_STATUS_BATCH_MAX"
    )
    # A waiting run step moves up one priority class per this many seconds (step_queue.py).
    queue_aging_seconds: float = Field(
        30.0, gt=0, validation_alias="LAMBDA_TRIGGER_QUEUE_AGING_SECONDS"
    )
    # After the start-up warm-up (warm.py), how often its steps run again: renews the cached
    # function timeouts and keeps idle GMS and AWS connections open; 0 turns that off.
    keep_warm_seconds: float = Field(
        60.0, ge=0, validation_alias="LAMBDA_TRIGGER_KEEP_WARM_SECONDS"
    )


class IamPolicySettings(_Settings):
    """What `datahub-lambda-trigger iam-policy` reads beyond the mapping: the consumer's Kafka
    identity on MSK and the completion queue's KMS key (neither changes how the consumer runs)."""

    # none | msk-iam | scram-sha-256 | scram-sha-512 | plain; only msk-iam needs IAM rights.
    kafka_auth: str = Field("none", validation_alias="LAMBDA_TRIGGER_KAFKA_AUTH")
    # arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>: the topics' and group's ARNs derive
    # from it.
    msk_cluster_arn: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN"
    )
    # A customer-managed KMS key encrypting the completion queue (SSE-KMS): the consumer needs
    # kms:Decrypt on it to receive. SQS-managed encryption (SSE-SQS) needs nothing.
    completion_queue_kms_key_arn: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN"
    )
