"""A real Apache Kafka broker for tests and the local stack.

Three ways to get one, all real brokers (there is deliberately no in-memory fake: the consumer's
offset, rebalance and key-partitioning behaviour is exactly what a fake would get wrong):

- `ExternalBroker`: one somebody else runs (`KAFKA_BOOTSTRAP_SERVERS`, e.g. CI's service container);
- `ContainerBroker`: testcontainers' KafkaContainer when a Docker engine is reachable;
- `KafkaBroker`: the Apache Kafka jars from Maven Central run on the local Java 17 in KRaft
  mode (one process that is broker and controller). Needs no Docker; this is what runs on
  developer machines and CI runners without a Docker engine.

`broker_for_tests()` picks the first available in that order.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports NewTopic at runtime but not in its type hints.
from confluent_kafka.cimpl import NewTopic

from devstack.kafka_tls import SecureListeners, make_tls_files
from devstack.lifecycle import StartStop
from devstack.ports import LOOPBACK, free_ports, port_accepts
from devstack.procs import owned_temp_dir, spawn, stop_process, tail

# Pinned like every other dependency. 4.1 is the Kafka line DataHub v1.7's quickstart runs.
KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# Kafka 4.1 logs through slf4j-api 1.7.36 and brings log4j-core 2.24.3 but no binding between
# the two (the distribution tarball adds one). log4j-slf4j-impl is that slf4j-1.x -> log4j2
# binding; the slf4j2 variant would be silently ignored by slf4j-api 1.7 and the broker would
# log nothing.
LOG4J_VERSION = "2.24.3"
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
# cp-kafka because testcontainers' KafkaContainer drives the Confluent image's start scripts.
CONTAINER_IMAGE = "confluentinc/cp-kafka:7.6.0"
MIN_JAVA = 17

INSTALL_HINT = (
    "A real Kafka broker is needed and none is available. Either install Java 17+ and Maven "
    "(Debian: apt-get install openjdk-17-jre-headless maven) so devstack can run the Apache "
    "Kafka jars, or make a Docker engine reachable (testcontainers), or point "
    "KAFKA_BOOTSTRAP_SERVERS at a running broker."
)

TEMP_PREFIX = "devstack-kafka-"


class KafkaUnavailable(RuntimeError):
    """No way to run or reach a broker on this machine; the message says what to install."""


class KafkaStartError(RuntimeError):
    """A broker was launched but did not become ready; the message carries its log tail."""


def admin_client(bootstrap_servers: str, **config: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap_servers, **config})


def broker_ready(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    """True when the cluster answers a metadata request and names at least one broker."""
    try:
        metadata = admin_client(bootstrap_servers).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def create_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    exist_ok: bool = True,
    timeout: float = 30.0,
) -> None:
    """Create topics and wait until every partition has a leader.

    A CreateTopics response only says the controller accepted the topic; producing right
    after it can still hit UNKNOWN_TOPIC_OR_PART, so we also wait for the metadata.
    """
    topic_names = list(dict.fromkeys(names))
    if not topic_names:
        return
    admin = admin_client(bootstrap_servers)
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                config=dict(config or {}),
            )
            for name in topic_names
        ],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if not (
                exist_ok
                and isinstance(error, KafkaError)
                and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
            ):
                raise RuntimeError(f"creating topic {name!r} failed: {error}") from exc
    deadline = time.monotonic() + timeout
    pending = set(topic_names)
    while pending:
        for name in list(pending):
            metadata = admin.list_topics(topic=name, timeout=5)
            topic = metadata.topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and topic.partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                pending.discard(name)
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics without a leader after {timeout}s: {sorted(pending)}")
            time.sleep(0.1)


class Broker(StartStop):
    """A running (after start()) Kafka cluster reachable at `bootstrap_servers`."""

    kind: str = "broker"

    @property
    @abstractmethod
    def bootstrap_servers(self) -> str: ...

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 1,
        *,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
        exist_ok: bool = True,
    ) -> None:
        create_topics(
            self.bootstrap_servers,
            names,
            partitions,
            replication_factor=replication_factor,
            config=config,
            exist_ok=exist_ok,
        )


class ExternalBroker(Broker):
    """A broker somebody else runs; start() only checks that it answers, stop() leaves it be."""

    kind = "external"

    def __init__(self, bootstrap_servers: str, *, timeout: float = 30.0) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._timeout = timeout

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap_servers

    def start(self) -> Self:
        deadline = time.monotonic() + self._timeout
        while not broker_ready(self._bootstrap_servers):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"KAFKA_BOOTSTRAP_SERVERS={self._bootstrap_servers} does not answer a "
                    f"metadata request within {self._timeout}s"
                )
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        pass


class ContainerBroker(Broker):
    """testcontainers' KafkaContainer in KRaft mode."""

    kind = "docker"

    def __init__(self, image: str = CONTAINER_IMAGE) -> None:
        self._image = image
        self._container: Any = None
        self._bootstrap_servers: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self._bootstrap_servers is None:
            raise RuntimeError("ContainerBroker is not started")
        return self._bootstrap_servers

    def start(self) -> Self:
        from testcontainers.community.kafka import KafkaContainer

        container = KafkaContainer(self._image).with_kraft()
        container.start(timeout=120)
        self._container = container
        self._bootstrap_servers = container.get_bootstrap_server()
        return self

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "datahub-lambda-trigger"


def java_major_version(java: str = "java") -> int | None:
    """The major version of `java` on PATH, or None when there is none."""
    executable = shutil.which(java)
    if executable is None:
        return None
    try:
        result = subprocess.run(
            [executable, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `java -version` prints to stderr, e.g. 'openjdk version "17.0.15" 2025-04-15'.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older call themselves 1.x.
    return int(match.group(2) or 0) if major == 1 else major


def _pom(version: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by devstack/kafka.py to resolve the Apache Kafka broker jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.devstack</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{MAVEN_DEPENDENCY_PLUGIN_VERSION}</version>
      </plugin>
    </plugins>
  </build>
</project>
"""


def kafka_libs(version: str = KAFKA_VERSION, *, cache_dir: Path | None = None) -> Path:
    """The directory holding the broker's jars, resolved from Maven Central on first use.

    Resolution runs under a file lock into a scratch directory that is renamed into place
    only when Maven succeeded, so concurrent callers (a test run and `devstack up`) neither
    download twice nor see a half-filled directory.
    """
    root = (cache_dir or cache_root()) / f"kafka-{version}"
    libs = root / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaUnavailable(f"Maven (mvn) is not on PATH. {INSTALL_HINT}")
        scratch = Path(tempfile.mkdtemp(prefix="resolve-", dir=root))
        try:
            (scratch / "pom.xml").write_text(_pom(version))
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(scratch / "pom.xml"),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={scratch / 'libs'}",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            jars = sorted(p.name for p in (scratch / "libs").glob("*.jar"))
            if result.returncode != 0 or not any(j.startswith("kafka_") for j in jars):
                raise KafkaUnavailable(
                    f"resolving Kafka {version} jars with Maven failed (exit "
                    f"{result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
                )
            (scratch / "libs" / ".complete").write_text("\n".join(jars) + "\n")
            if libs.exists():
                shutil.rmtree(libs)  # left over from an interrupted run without the marker
            (scratch / "libs").rename(libs)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return libs


def _cluster_id() -> str:
    # Kafka's Uuid.toString(): 16 random bytes, URL-safe base64, no padding (22 chars).
    # Kafka itself never hands out ids starting with '-': they look like options on a command line.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaBroker(Broker):
    """A single-node Kafka (KRaft broker+controller) running from the Maven Central jars.

    Listens on free loopback ports, keeps its data and `broker.log` in its own temp dir (the
    log goes to `log_file` instead when one is given), is ready when a metadata request names
    the broker, and is stopped with SIGTERM (then SIGKILL) on stop(), at interpreter exit,
    or by the kernel when the starting thread dies.
    """

    kind = "jars"

    def __init__(
        self,
        *,
        version: str = KAFKA_VERSION,
        host: str = LOOPBACK,
        port: int = 0,
        controller_port: int = 0,
        heap: str = "512m",
        log_file: Path | None = None,
        startup_timeout: float = 90.0,
        extra_config: Mapping[str, str] | None = None,
        secure: SecureListeners | None = None,
    ) -> None:
        self.version = version
        # Opt-in: SASL_SSL (SCRAM/PLAIN), OAUTHBEARER and mTLS listeners beside PLAINTEXT.
        self.secure = secure
        self.host = host
        self._requested_ports = (port, controller_port)
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self._log_file = log_file
        self.startup_timeout = startup_timeout
        self.extra_config = dict(extra_config or {})
        self.work_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self.process is None:
            raise RuntimeError("KafkaBroker is not started")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_file(self) -> Path:
        if self._log_file is not None:
            return self._log_file
        if self.work_dir is None:
            raise RuntimeError("KafkaBroker is not started")
        return self.work_dir / "broker.log"

    @staticmethod
    def check_java() -> None:
        major = java_major_version()
        if major is None:
            raise KafkaUnavailable(f"no `java` on PATH. {INSTALL_HINT}")
        if major < MIN_JAVA:
            raise KafkaUnavailable(
                f"java {major} found, Kafka {KAFKA_VERSION} needs 17+. {INSTALL_HINT}"
            )

    def start(self) -> Self:
        if self.process is not None:
            return self
        self.check_java()
        libs = kafka_libs(self.version)
        self.work_dir = owned_temp_dir(TEMP_PREFIX)
        # Registered before the launch so that even a failure half-way cleans up.
        atexit.register(self.stop)
        try:
            self._launch_with_retries(libs)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch_with_retries(self, libs: Path) -> None:
        fixed_ports = all(self._requested_ports)
        attempts = 1 if fixed_ports else 3
        for attempt in range(1, attempts + 1):
            try:
                self._launch(libs)
                return
            except KafkaStartError as exc:
                # free_ports() releases its ports before the JVM binds them; another process
                # can take one in between. That is the only failure worth a retry.
                if attempt == attempts or "Address already in use" not in str(exc):
                    raise

    def _java(self, libs: Path, main_class: str, *args: str) -> list[str]:
        assert self.work_dir is not None
        return [
            "java",
            f"-Xmx{self.heap}",
            "-Xms64m",
            # One GC thread and no JIT-compiler thread pools worth mentioning: two cores are
            # shared with the services under test.
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.work_dir}",
            "-cp",
            f"{libs}/*",
            main_class,
            *args,
        ]

    def _write_config(self) -> Path:
        assert self.work_dir is not None
        data_dir = self.work_dir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        listeners = [f"PLAINTEXT://{self.host}:{self.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        security: dict[str, str] = {}
        if self.secure is not None:
            self.secure.tls = make_tls_files(self.work_dir / "tls", self.host)
            for name, protocol, port in self.secure.listeners():
                listeners.append(f"{name}://{self.host}:{port}")
                protocols.append(f"{name}:{protocol}")
            security = self.secure.server_properties()
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": ",".join([*listeners, f"CONTROLLER://{self.host}:{self.controller_port}"]),
            "advertised.listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            # One node: every internal topic must make do with one replica.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A consumer's first join would otherwise wait 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            # Like DataHub's quickstart broker, and a producer-first test needs it.
            "auto.create.topics.enable": "true",
            **security,
            **self.extra_config,
        }
        path = self.work_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in config.items()))
        (self.work_dir / "log4j2.properties").write_text(
            "\n".join(
                [
                    "appender.file.type = File",
                    "appender.file.name = file",
                    f"appender.file.fileName = {self.log_file}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    # The state-change and request loggers are chatty and never what we need.
                    "logger.statechange.name = state.change.logger",
                    "logger.statechange.level = WARN",
                    "",
                ]
            )
        )
        return path

    def _launch(self, libs: Path) -> None:
        assert self.work_dir is not None
        if all(self._requested_ports):
            self.port, self.controller_port = self._requested_ports
        else:
            self.port, self.controller_port = free_ports(2, self.host)
        if self.secure is not None:
            (
                self.secure.sasl_ssl_port,
                self.secure.oauth_port,
                self.secure.mtls_port,
            ) = free_ports(3, self.host)
        config = self._write_config()
        # stdout/stderr of the JVM itself (crash messages, JVM option errors) land next to
        # the log4j output.
        console_log = self.work_dir / "console.log"
        formatted = subprocess.run(
            self._java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(config),
                *(self.secure.scram_arguments() if self.secure is not None else []),
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if formatted.returncode != 0:
            raise KafkaStartError(
                f"kafka-storage format failed (exit {formatted.returncode}):\n"
                f"{formatted.stdout}{formatted.stderr}"
            )
        self.process = spawn(
            self._java(libs, "kafka.Kafka", str(config)), log_path=console_log, cwd=self.work_dir
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise KafkaStartError(
                    f"Kafka exited with {code} while starting.\n--- {self.log_file}:\n"
                    f"{tail(self.log_file)}\n--- {console_log}:\n{tail(console_log)}"
                )
            # Connect first: librdkafka would log every refused connection to stderr.
            if port_accepts(self.port, self.host) and broker_ready(f"{self.host}:{self.port}"):
                return
            if time.monotonic() > deadline:
                stop_process(self.process)
                self.process = None
                raise KafkaStartError(
                    f"Kafka not ready after {self.startup_timeout}s.\n--- {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            time.sleep(0.2)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the broker process and start it again on the same ports with the same data,
        as an operator's restart does: clients see an outage of `down_seconds` plus the start
        time, then reconnect by themselves. For fault tests."""
        assert self.process is not None and self.work_dir is not None, "not started"
        stop_process(self.process, timeout=20)
        self.process = None
        time.sleep(down_seconds)
        config = self.work_dir / "server.properties"
        self.process = spawn(
            self._java(kafka_libs(self.version), "kafka.Kafka", str(config)),
            log_path=self.work_dir / "console-restart.log",
            cwd=self.work_dir,
        )
        deadline = time.monotonic() + self.startup_timeout
        while not (port_accepts(self.port, self.host) and broker_ready(self.bootstrap_servers)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise KafkaStartError(f"Kafka did not come back.\n{tail(self.log_file)}")
            time.sleep(0.2)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.process is not None:
            stop_process(self.process, timeout=20)
            self.process = None
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None


def docker_available(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (DOCKER_HOST or the default socket)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False  # skip importing the docker SDK, and its timeout, on Docker-less hosts
    try:
        import docker  # type: ignore[import-untyped]  # no stubs pinned; only ping() is used

        client = docker.from_env(timeout=int(timeout))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        # docker raises DockerException, requests errors or plain OSError depending on
        # what is missing; any of them means "no usable engine".
        return False


def local_jars_possible() -> bool:
    major = java_major_version()
    if major is None or major < MIN_JAVA:
        return False
    return (cache_root() / f"kafka-{KAFKA_VERSION}" / "libs" / ".complete").exists() or bool(
        shutil.which("mvn")
    )


def select_broker(external: str | None = None, *, mode: str | None = None) -> Broker:
    """An unstarted broker: `external` if given, else Docker, else the local jars.

    `mode` ("external", "docker" or "jars") forces one kind, e.g. to use the jars on a host
    that has Docker too. Never returns a fake: with nothing available it raises.
    """
    if mode not in (None, "", "external", "docker", "jars"):
        raise ValueError(f"unknown Kafka mode {mode!r}: use external, docker or jars")
    if mode == "external" or (external and not mode):
        if not external:
            raise KafkaUnavailable("Kafka mode 'external' needs KAFKA_BOOTSTRAP_SERVERS")
        return ExternalBroker(external)
    if mode == "docker" or (not mode and docker_available()):
        return ContainerBroker()
    if mode == "jars" or local_jars_possible():
        return KafkaBroker()
    raise KafkaUnavailable(INSTALL_HINT)


def broker_for_tests(environ: Mapping[str, str] | None = None) -> Broker:
    """The broker the test session uses: KAFKA_BOOTSTRAP_SERVERS > Docker > local jars.

    DEVSTACK_KAFKA=external|docker|jars forces one of them.
    """
    env = os.environ if environ is None else environ
    return select_broker(env.get("KAFKA_BOOTSTRAP_SERVERS") or None, mode=env.get("DEVSTACK_KAFKA"))
