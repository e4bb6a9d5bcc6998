"""Real parts for every test: a private redis-server and an aiosmtpd server with TLS and AUTH."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from testbed import SMTP_USERS, account_toml

from pipeline.config import Config, load_config
from pipeline.context import StageContext, build_context
from pipeline.runtime import resources as runtime
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles, make_tls_files
from pipeline.state.localredis import LocalRedis

# pg_fixture: private PostgreSQL cluster (pg_url, pg_engine, pg_empty_url); skip_policy: under CI=true a skip fails
pytest_plugins = ["pg_fixture", "skip_policy"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> Iterator[str]:
    """A clean private Redis for each test (never the machine's one on 6379)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    runtime.reset()
    yield redis_server.url
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server(tls_files: TLSFiles) -> Iterator[DevSMTPServer]:
    """STARTTLS listener (server.ports['starttls']) and implicit TLS (server.ports['tls']), AUTH required."""
    server = DevSMTPServer(tls_files=tls_files, users=dict(SMTP_USERS))
    server.start("starttls")
    server.start("tls")
    yield server
    server.stop()


@pytest.fixture
def write_config(
    tmp_path: Path, redis_url: str, smtp_server: DevSMTPServer, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """Write a config for accounts alpha/beta/gamma on the SMTP fixture; returns its path."""
    for user, password in SMTP_USERS.items():
        monkeypatch.setenv(f"TEST_PW_{user.upper()}", password)
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "hello.subject").write_text("Hello {{ first_name }}")
    (templates / "hello.html").write_text("<p>Hi {{ first_name }}, welcome to {{ company }}.</p>")

    def write(*, accounts: str | None = None, routes: str | None = None, extra: str = "", default: str = "gamma") -> Path:
        port = smtp_server.ports["starttls"]
        if accounts is None:
            accounts = "".join(account_toml(n, port, tls_files.ca_file) for n in SMTP_USERS)
        if routes is None:
            routes = """
[[routes]]
name = "nordics"
match = { list = "nordics" }
accounts = ["alpha"]

[[routes]]
name = "outreach"
match = { campaign = "outreach" }
accounts = ["beta"]
"""
        text = f"""
[broker]
url = "{redis_url}"
heartbeat_timeout_ms = 5000

[retry]
base_delay = 0.3
max_delay = 2
max_attempts = 4

[templates]
dir = "templates"
{extra}
{accounts}
{routes}
[default]
account = "{default}"
"""
        path = tmp_path / "mailpipe.toml"
        path.write_text(text)
        monkeypatch.setenv("MAILPIPE_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Config:
    return load_config(write_config())


@pytest.fixture
def ctx(config: Config) -> StageContext:
    return build_context(config)


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(config_path: Path, processes: int = 1, threads: int = 8, queues: str = "") -> WorkerProcess:
        worker = WorkerProcess(
            config_path,
            processes=processes,
            threads=threads,
            queues=queues,
            env={k: v for k, v in os.environ.items() if k.startswith("TEST_PW_")},
            log_path=tmp_path / f"worker-{len(started)}.log",
        ).start()
        started.append(worker)
        return worker

    yield start
    # The test is over: kill rather than shut down gracefully (Dramatiq's shutdown polls once a second and
    # takes ~2 s per command). A test that proves something about shutdown calls worker.stop() itself.
    for worker in started:
        worker.kill()
        worker.stop()  # closes the log; the process is already gone
