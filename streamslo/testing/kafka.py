"""A real single-node Apache Kafka broker (KRaft) for tests and benchmarks.

Fetches the broker jars from Maven Central once (cached under
``~/.cache/streamslo/kafka-<version>/lib``), formats a KRaft log dir, starts
``kafka.Kafka`` and waits until a client can fetch metadata. No Docker, no
Kafka-compatible substitute. ``scripts/kafka.py`` is its command line
(``fetch``, ``start``, ``stop``); ``tests/fixtures_kafka.py`` its pytest fixtures.

    from streamslo.testing.kafka import KafkaBroker
    with KafkaBroker() as broker:          # random free ports, temporary log dir
        print(broker.bootstrap)           # "127.0.0.1:40123"
        broker.kill(); broker.restart()   # same port and log dir
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from streamslo.testing.ports import free_port

KAFKA_VERSION = os.environ.get("STREAMSLO_KAFKA_VERSION", "3.9.1")
CACHE = Path(os.environ.get("STREAMSLO_CACHE", Path.home() / ".cache" / "streamslo"))
# Small heap and serial GC: the machine has 2 cores shared by several processes.
# STREAMSLO_KAFKA_JVM_OPTS replaces them (benchmarks: Kafka's own G1 settings, say).
JVM_OPTS = (os.environ.get("STREAMSLO_KAFKA_JVM_OPTS") or
            "-Xmx512m -Xms128m -XX:+UseSerialGC -Djava.awt.headless=true").split()
READY_TIMEOUT_S = 90.0

# Resolved by Maven, never built: the broker jars and an slf4j binding (without one
# Kafka 3.9 is silent). Written next to the cache, so the installed package needs no data file.
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.streamslo</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <properties>
    <kafka.version>3.9.1</kafka.version>
  </properties>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${kafka.version}</version>
    </dependency>
    <!-- Kafka 3.9 logs through slf4j 1.x + reload4j; without a binding the broker is silent. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


def lib_dir(version: str = KAFKA_VERSION) -> Path:
    """Where the broker jars of ``version`` are cached."""
    return CACHE / f"kafka-{version}" / "lib"


def fetch(version: str = KAFKA_VERSION) -> Path:
    """Download the broker jars with Maven unless already cached; return the lib dir."""
    lib = lib_dir(version)
    if lib.is_dir() and any(lib.glob("kafka_2.13-*.jar")):
        return lib
    if shutil.which("mvn") is None:
        raise RuntimeError("mvn not found: run scripts/install-deps.sh (installs maven)")
    tmp = lib.with_name("lib.partial")
    pom = lib.with_name("pom.xml")
    pom.parent.mkdir(parents=True, exist_ok=True)
    pom.write_text(POM, encoding="utf-8")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [
            "mvn", "-B", "-q", "-f", str(pom),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ],
        check=True,
    )
    # Rename at the end so an interrupted download is never mistaken for a cache hit.
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    return lib


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Kafka Metadata v1 request; return how many brokers the answer lists.

    A raw protocol call keeps this script free of Python Kafka clients and
    proves the broker answers clients (not merely that the port is open).
    """
    client_id = b"streamslo-ready"
    # header: api_key=3 (Metadata), api_version=1, correlation_id, client_id; body: topics=[]
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        data = _recv_exact(s, size)
    correlation_id, n_brokers = struct.unpack(">ii", data[:8])
    if correlation_id != 7:
        raise RuntimeError("unexpected correlation id")
    return int(n_brokers)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


class KafkaBroker:
    """One single-node KRaft broker process on 127.0.0.1.

    ``workdir`` holds ``server.properties``, the log dir (``data/``), the
    broker's own log (``server.log``) and its PID file. Without ``workdir``
    a temporary directory is used and removed by :meth:`stop`.
    """

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        self.port = port or free_port()
        self.controller_port = free_port()
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="streamslo-kafka-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "kafka.pid"

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            # Few threads: this broker serves tests on a shared 2-core machine.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
        (self.workdir / "log4j.properties").write_text(
            LOG4J.format(log=self.workdir / "server.log"), encoding="utf-8"
        )
        return path

    def _java(self, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
        return ["java", *JVM_OPTS, *jvm, "-cp", f"{lib_dir()}/*", *args]

    def _format(self, config: Path) -> None:
        if (self.workdir / "data" / "meta.properties").exists():
            return  # restart: keep the log dir
        # What `StorageTool random-uuid` prints (a URL-safe base64 UUID), without a JVM start.
        # Like Kafka's Uuid.randomUuid, never one starting with "-": StorageTool would read
        # `-t -abc...` as an option and fail (about 1 start in 64).
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(
            # C1 only: a short-lived tool does not pay back C2 compilation.
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
                       jvm=("-XX:TieredStopAtLevel=1",)),
            check=True, capture_output=True,
        )

    def start(self) -> KafkaBroker:
        """Format (first start only), launch the broker and wait until it answers Metadata."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        t0 = time.monotonic()
        fetch()
        config = self._write_config()
        self._format(config)
        out = open(self.workdir / "stdout.log", "ab")  # noqa: SIM115 (the child owns it)
        log4j = f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}"
        self.proc = subprocess.Popen(
            ["java", *JVM_OPTS, log4j, "-cp", f"{lib_dir()}/*", "kafka.Kafka", str(config)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        self.pid_file.write_text(str(self.proc.pid), encoding="utf-8")
        self._wait_ready(t0)
        self.startup_s = time.monotonic() - t0
        print(f"kafka: broker {self.bootstrap} ready in {self.startup_s:.1f}s", file=sys.stderr)
        return self

    def _wait_ready(self, t0: float) -> None:
        assert self.proc is not None
        while time.monotonic() - t0 < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kafka exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if metadata_brokers("127.0.0.1", self.port) >= 1:
                    return
            except (OSError, RuntimeError, struct.error):
                pass
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"kafka not ready after {READY_TIMEOUT_S}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("stdout.log", "server.log"):
            path = self.workdir / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def _signal(self, sig: int, timeout: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM, SIGKILL after ``timeout``); removes a temporary dir."""
        self._signal(signal.SIGTERM, timeout)
        self.pid_file.unlink(missing_ok=True)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the broker (a crash); the log dir is kept for :meth:`restart`."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self) -> KafkaBroker:
        """Stop if running, then start again on the same port with the same log dir."""
        self._signal(signal.SIGTERM, 30.0)
        return self.start()

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
