"""The whole local stack: Kafka broker, GMS test double, moto server, plus optional services.

Start order is Kafka, then the GMS double (it produces MetadataChangeLog events to Kafka), then
moto, then the extra processes (api, consumer) that need all three. Stop order is the reverse,
so that no service sees its dependencies vanish while it still runs.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import httpx

from devstack.aws import AWS_ACCESS_KEY_ID, AWS_DEFAULT_REGION, AWS_SECRET_ACCESS_KEY, MotoServer
from devstack.kafka import Broker, ExternalBroker, KafkaBroker, select_broker
from devstack.kafka_tls import SecureListeners
from devstack.lifecycle import StartStop
from devstack.procs import ProcessSpec, python_env, spawn, stop_process, tail
from devstack.services import service_specs

if TYPE_CHECKING:
    from devstack.gms_double import GmsDouble

# The KEY=value names of docs/contract.md ("Local stack"), in the order they are printed.
ENV_KEYS = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATAHUB_GMS_URL",
    "DATAHUB_FRONTEND_URL",
    "SCHEMA_REGISTRY_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "DATAHUB_GMS_TOKEN",
)


class GmsLike(Protocol):
    """What the stack needs from the GMS double (devstack.gms_double.GmsDouble)."""

    @property
    def url(self) -> str: ...

    @property
    def schema_registry_url(self) -> str: ...

    @property
    def frontend_url(self) -> str: ...

    @property
    def admin_token(self) -> str: ...


DEV_LEDGER_KEYS = "devstack:local-stack-ledger-key-not-a-secret"


def stack_env(kafka_bootstrap: str, gms: GmsLike, moto: MotoServer) -> dict[str, str]:
    """The contract's KEY=value lines for a running stack."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATAHUB_GMS_URL": gms.url,
        "DATAHUB_FRONTEND_URL": gms.frontend_url,
        "SCHEMA_REGISTRY_URL": gms.schema_registry_url,
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto.region or AWS_DEFAULT_REGION,
        "DATAHUB_GMS_TOKEN": gms.admin_token,
        # The run ledger's HMAC key (consumer ledger_auth.py): a fixed, public one, because a
        # local stack's Kafka has no ACLs anyway; production mounts a Secret (docs/security.md).
        "LAMBDA_TRIGGER_LEDGER_KEYS": DEV_LEDGER_KEYS,
    }


def format_env(env: Mapping[str, str]) -> str:
    """KEY=value lines a POSIX shell can source (`set -a; . .devstack/env`)."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items())


class ManagedProcess:
    """One ProcessSpec running, its output in `log_path`."""

    def __init__(self, spec: ProcessSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, base_env: Mapping[str, str]) -> None:
        env = python_env({**base_env, **self.spec.env})
        self.process = spawn(self.spec.argv, log_path=self.log_path, env=env, cwd=self.spec.cwd)
        if self.spec.ready_url is None:
            return
        deadline = time.monotonic() + self.spec.ready_timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {code} while starting.\n--- {self.log_path}:\n"
                        f"{tail(self.log_path)}"
                    )
                try:
                    if client.get(self.spec.ready_url).is_success:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} not ready at {self.spec.ready_url} after "
                        f"{self.spec.ready_timeout}s.\n--- {self.log_path}:\n{tail(self.log_path)}"
                    )
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=15)
            self.process = None


def service_processes(stack: Stack) -> list[ProcessSpec]:
    """The project's own services, for `Stack(with_services=True)` / `up --with-services`.

    Called once Kafka, the GMS double and moto run: `stack.env()`, `stack.moto` (to create the
    functions a mapping names) and `stack.state_dir` are available. Hook for the api and the
    consumer: return one ProcessSpec per service; they start in list order, each waiting for
    its ready_url, and stop before the infrastructure.
    """
    return service_specs(stack)


class Stack(StartStop):
    """Kafka broker + GMS double + moto server (+ extra processes), started and stopped together.

    `kafka_bootstrap` uses an already running broker instead of starting one; `kafka` passes
    a Broker object (unstarted) to use instead of the default choice (Docker, else local jars);
    `kafka_mode` ("docker" or "jars") forces one of the two. `with_services` also runs the
    project's services (see service_processes) after the infrastructure.
    """

    def __init__(
        self,
        state_dir: Path = Path(".devstack"),
        *,
        kafka: Broker | None = None,
        kafka_bootstrap: str | None = None,
        gms_port: int = 0,
        moto_port: int = 0,
        kafka_mode: str | None = None,
        gms_state_file: Path | None = None,
        with_services: bool = False,
        kafka_security: bool = False,
    ) -> None:
        self.with_services = with_services
        # Opt-in: the jars broker with SASL_SSL (SCRAM), OAUTHBEARER and mTLS listeners; the GMS
        # double and the services then use SASL_SSL/SCRAM (devstack/kafka_tls.py).
        self.kafka_security = kafka_security
        if kafka_security and (kafka is not None or kafka_bootstrap or kafka_mode == "docker"):
            raise ValueError("kafka_security needs the stack's own jars broker")
        self.state_dir = state_dir.resolve()
        self.logs_dir = self.state_dir / "logs"
        self._kafka_override = kafka
        self._kafka_bootstrap = kafka_bootstrap
        self._kafka_mode = kafka_mode
        self._gms_port = gms_port
        self._moto_port = moto_port
        self._gms_state_file = gms_state_file
        self.kafka: Broker | None = None
        self.gms: GmsDouble | None = None
        self.moto: MotoServer | None = None
        self.processes: list[ManagedProcess] = []
        self._pending: list[ProcessSpec] = []
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start everything; on any failure (or Ctrl-C) stop what already runs and re-raise."""
        if self._started:
            return self
        self._rotate_logs()
        try:
            self._start_kafka()
            self._start_gms()
            self._start_moto()
            self._started = True
            if self.with_services:
                for spec in service_processes(self):
                    self._start_process(spec)
            pending, self._pending = self._pending, []
            for spec in pending:
                self._start_process(spec)
        except BaseException:
            self.stop()
            raise
        return self

    def _rotate_logs(self) -> None:
        # Keep the previous run's logs (the run that crashed is the one worth reading).
        if self.logs_dir.exists():
            previous = self.state_dir / "logs.previous"
            shutil.rmtree(previous, ignore_errors=True)
            self.logs_dir.rename(previous)
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    def _start_kafka(self) -> None:
        if self._kafka_override is not None:
            broker = self._kafka_override
        elif self._kafka_bootstrap:
            broker = ExternalBroker(self._kafka_bootstrap)
        elif self.kafka_security:
            broker = KafkaBroker(log_file=self.logs_dir / "kafka.log", secure=SecureListeners())
        else:
            broker = select_broker(mode=self._kafka_mode)
            if isinstance(broker, KafkaBroker):
                broker = KafkaBroker(log_file=self.logs_dir / "kafka.log")
        self.kafka = broker
        broker.start()
        # The MCL topics are created by the GMS double, as DataHub's kafka-setup job would.

    def _start_gms(self) -> None:
        # Imported here: the double pulls in the DataHub SDK's schemas, which `python -m
        # devstack status/down` (they import this module) should not wait for.
        from devstack.gms_double import GmsDouble

        assert self.kafka is not None
        secure = self._secure()
        gms = GmsDouble(
            self.kafka_bootstrap,
            port=self._gms_port,
            state_file=self._gms_state_file,
            kafka_config=secure.scram_config("datahub") if secure is not None else None,
        )
        self.gms = gms
        gms.start()

    def _start_moto(self) -> None:
        moto = MotoServer(port=self._moto_port, log_file=self.logs_dir / "moto.log")
        self.moto = moto
        moto.start()

    def add_process(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        ready_url: str | None = None,
        *,
        ready_timeout: float = 60.0,
        cwd: Path | None = None,
        exports: Mapping[str, str] | None = None,
    ) -> ProcessSpec:
        """Run an extra process with the stack: now if the stack runs, else at start().

        It gets os.environ + env() + `env`, logs to <state_dir>/logs/<name>.log and is stopped
        before the infrastructure.
        """
        spec = ProcessSpec(
            name=name,
            argv=list(argv),
            env=dict(env or {}),
            ready_url=ready_url,
            ready_timeout=ready_timeout,
            cwd=cwd,
            exports=dict(exports or {}),
        )
        if self._started:
            self._start_process(spec)
        else:
            self._pending.append(spec)
        return spec

    def _start_process(self, spec: ProcessSpec) -> None:
        managed = ManagedProcess(spec, self.logs_dir / f"{spec.name}.log")
        self.processes.append(managed)
        managed.start(self.env())

    def stop(self) -> None:
        """Stop in reverse start order. Carries on past a failing part; re-raises the first."""
        errors: list[BaseException] = []
        for managed in reversed(self.processes):
            try:
                managed.stop()
            except Exception as exc:
                errors.append(exc)
        self.processes.clear()
        for part in (self.moto, self.gms, self.kafka):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as exc:
                errors.append(exc)
        self.moto = None
        self.gms = None
        self.kafka = None
        self._started = False
        if errors:
            raise errors[0]

    # -- what runs ---------------------------------------------------------------------------

    def _secure(self) -> SecureListeners | None:
        return self.kafka.secure if isinstance(self.kafka, KafkaBroker) else None

    @property
    def kafka_bootstrap(self) -> str:
        """Where clients connect: the SASL_SSL listener on a secured stack."""
        if self.kafka is None:
            raise RuntimeError("the stack is not started")
        secure = self._secure()
        if secure is not None and isinstance(self.kafka, KafkaBroker):
            return secure.bootstrap(self.kafka.host, "SASL_SSL")
        return self.kafka.bootstrap_servers

    def env(self) -> dict[str, str]:
        """The contract's KEY=value set, plus what the started extra processes export."""
        if self.kafka is None or self.gms is None or self.moto is None:
            raise RuntimeError("the stack is not started")
        env = stack_env(self.kafka_bootstrap, self.gms, self.moto)
        secure = self._secure()
        if secure is not None:
            env.update(secure.client_env())
        for managed in self.processes:
            env.update(managed.spec.exports)
        return env

    def dead_parts(self) -> list[str]:
        """Names of child processes that exited although the stack was not stopped."""
        dead: list[str] = []
        kafka_process = getattr(self.kafka, "process", None)
        if isinstance(kafka_process, subprocess.Popen) and kafka_process.poll() is not None:
            dead.append("kafka")
        if (
            self.moto is not None
            and self.moto.process is not None
            and self.moto.process.poll() is not None
        ):
            dead.append("moto")
        gms_process = getattr(self.gms, "process", None)
        if isinstance(gms_process, subprocess.Popen) and gms_process.poll() is not None:
            dead.append("gms")
        dead.extend(p.name for p in self.processes if not p.running())
        return dead

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (pids, endpoints, logs) for `python -m devstack status`."""
        parts: list[dict[str, Any]] = []
        if self.kafka is not None:
            parts.append(
                {
                    "name": "kafka",
                    "kind": self.kafka.kind,
                    "pid": getattr(self.kafka, "pid", None),
                    "endpoint": self.kafka_bootstrap,
                    "log": str(getattr(self.kafka, "log_file", "") or ""),
                }
            )
        if self.gms is not None:
            parts.append(
                {
                    "name": "gms",
                    "kind": "double",
                    "pid": _gms_pid(self.gms),
                    "endpoint": self.gms.url,
                    "log": "",
                }
            )
        if self.moto is not None:
            parts.append(
                {
                    "name": "moto",
                    "kind": "moto",
                    "pid": self.moto.pid,
                    "endpoint": self.moto.endpoint_url,
                    "log": str(self.moto.log_file),
                }
            )
        for managed in self.processes:
            parts.append(
                {
                    "name": managed.name,
                    "kind": "service",
                    "pid": managed.pid,
                    "endpoint": managed.spec.ready_url or "",
                    "log": str(managed.log_path),
                }
            )
        return {"components": parts}


def _gms_pid(gms: Any) -> int | None:
    """The double's own process id when it runs as a child process; None when in-process."""
    pid = getattr(gms, "pid", None)
    if isinstance(pid, int):
        return pid
    process = getattr(gms, "process", None)
    return process.pid if isinstance(process, subprocess.Popen) else None
