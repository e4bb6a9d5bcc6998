"""A private RabbitMQ node for tests: own node name, ports, epmd, cookie and data in a temporary folder.

Never the machine's broker on 5672 (or its epmd on 4369): the node listens for AMQP on a free port
of 127.0.0.1, its Erlang distribution on another, and registers with an epmd of its own
(``ERL_EPMD_PORT``), so two test runs and the system RabbitMQ never see each other. ``HOME`` is the
temporary folder, so the Erlang cookie is private too. Readiness is an AMQP handshake, not
``rabbitmqctl`` (the CLI would need distribution ports of its own). A node that does not start is an
error carrying its log tail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from pipeline.smtp.netutil import free_port

SERVER = next(
    (p for p in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server")) if p and os.path.exists(p)), None
)
EPMD = shutil.which("epmd")
START_TIMEOUT = 90.0  # seconds; a cold node boots in ~10 s, the machine is shared


class LocalRabbitMQ:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.node = f"mailpipe-test-{uuid.uuid4().hex[:10]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def env(self) -> dict[str, str]:
        base = self.root / "base"
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(self.root / "home"),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_BASE": str(base),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),  # base/rabbitmq.conf
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }

    def start(self) -> LocalRabbitMQ:
        if SERVER is None or EPMD is None:
            raise FileNotFoundError("rabbitmq-server is not installed (ops/bootstrap.sh installs it)")
        base = self.root / "base"
        for folder in (self.root / "home", base / "log", base / "mnesia"):
            folder.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")
        (base / "rabbitmq.conf").write_text("")
        with open(self.root / "server.log", "ab") as out:
            self.process = subprocess.Popen(
                [SERVER], env=self.env(), stdout=out, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._handshake():
                return self
            time.sleep(0.5)
        exited = self.process.poll()
        self.stop()
        state = f"exited with {exited}" if exited is not None else f"no AMQP handshake after {START_TIMEOUT:g} s"
        raise RuntimeError(f"private RabbitMQ node {self.node} did not start ({state}); log tail:\n{self.log()}")

    def _handshake(self) -> bool:
        import pika

        try:
            params = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2&blocked_connection_timeout=2")
            pika.BlockingConnection(params).close()
        except Exception:
            return False
        return True

    def has_queue(self, name: str) -> bool:
        import pika
        import pika.exceptions

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            connection.channel().queue_declare(queue=name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False
        finally:
            if connection.is_open:
                connection.close()

    def log(self) -> str:
        logs = [self.root / "server.log", *sorted((self.root / "base" / "log").glob("*.log"))]
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)  # the node shuts down cleanly on SIGTERM
                try:
                    self.process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(10)
            self.process = None
        if EPMD is not None:  # our private epmd daemonised itself: ask it, by its port, to go
            subprocess.run(
                [EPMD, "-kill"],
                env={**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)},
                capture_output=True,
                timeout=10,
                check=False,
            )
