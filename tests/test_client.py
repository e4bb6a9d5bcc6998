"""`pipeline.Client` in someone else's process: their Dramatiq broker, encoder and Prometheus registry
stay theirs, no mailbox secret is needed, and what it submits goes through real workers to `sent`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from eventually import wait_until_final

import pipeline
from pipeline.client import Client
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.state.status import StatusStore

ROOT = Path(__file__).resolve().parents[1]

# An application with its own Dramatiq broker, encoder and actor, and its own Prometheus metrics,
# that imports mailpipe's client and submits one event; it prints what it saw as JSON.
HOST_APP = """
import json, sys
import dramatiq, prometheus_client
from dramatiq.brokers.stub import StubBroker

app_broker = StubBroker()
dramatiq.set_broker(app_broker)
app_encoder = dramatiq.PickleEncoder()
dramatiq.set_encoder(app_encoder)

@dramatiq.actor(queue_name="app")
def app_task(n):
    pass

app_requests = prometheus_client.Counter("app_requests_total", "The application's own counter.")
app_registry = prometheus_client.CollectorRegistry()
app_jobs = prometheus_client.Gauge("app_jobs", "In the application's own registry.", registry=app_registry)
global_before = set(prometheus_client.REGISTRY._names_to_collectors)
own_before = set(app_registry._names_to_collectors)

from pipeline import Client

with Client(broker_url=sys.argv[1], redis_url=sys.argv[2]) as client:
    report = client.submit([json.loads(sys.argv[3]), {"event_id": "bad one", "to": "not an address"}])
app_task.send(1)

print(json.dumps({
    "same_broker": dramatiq.get_broker() is app_broker,
    "same_encoder": dramatiq.get_encoder() is app_encoder,
    "global_added": sorted(set(prometheus_client.REGISTRY._names_to_collectors) - global_before),
    "own_added": sorted(set(app_registry._names_to_collectors) - own_before),
    "mailpipe_collectors": [n for n in prometheus_client.REGISTRY._names_to_collectors if n.startswith("mailpipe")],
    "metrics_imported": "pipeline.observe.metrics" in sys.modules,
    "config_imported": "pipeline.config" in sys.modules,
    "app_messages": app_broker.queues["app"].qsize(),
    "accepted": report.accepted,
    "refused": [e.index for e in report.errors],
}))
"""


def secretless_env() -> dict[str, str]:
    """The environment of a process that only submits: no SMTP/IMAP password, no mailpipe config."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEST_PW_", "MAILPIPE_"))}


def test_the_client_leaves_the_host_process_alone_and_its_event_is_sent_by_real_workers(
    write_config: Callable[..., Path],
    redis_url: str,
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    start_workers(write_config())
    data = {"first_name": "Cy", "company": "Acme"}
    event = {"event_id": "client-1", "to": "client@receiver.example", "template": "hello", "data": data}

    done = subprocess.run(
        [sys.executable, "-c", HOST_APP, redis_url, redis_url, json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=120,
        env=secretless_env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["same_broker"] and seen["same_encoder"], seen
    assert seen["app_messages"] == 1  # the application's own actor still enqueues on its own broker
    assert seen["global_added"] == [] and seen["own_added"] == [] and seen["mailpipe_collectors"] == [], seen
    assert not seen["metrics_imported"] and not seen["config_imported"], seen
    assert seen["accepted"] == ["client-1"] and seen["refused"] == [1]

    assert wait_until_final(StatusStore(redis_client), ["client-1"], timeout=60) == {"client-1": "sent"}
    assert [m.rcpt_to[0] for m in smtp_server.snapshot()] == ["client@receiver.example"]


def test_from_config_reads_only_the_broker_and_state_store_so_no_secret_is_needed(
    write_config: Callable[..., Path], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config()
    path.write_text(path.read_text().replace("[templates]", f'[redis]\nurl = "{redis_url}"\n\n[templates]'))
    for name in [k for k in os.environ if k.startswith("TEST_PW_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match="TEST_PW_"):
        load_config(path)  # the full config needs every account's password …

    with Client.from_config(path) as client:  # … the client does not
        assert (client.broker_url, client.redis_url) == (redis_url, redis_url)
        report = client.submit([{"event_id": "fc-1", "to": "fc@receiver.example", "subject": "s", "text": "t"}])
        assert report.accepted == ["fc-1"]
        again = client.submit([{"event_id": "fc-1", "to": "fc@receiver.example", "subject": "s", "text": "t"}])
        assert again.accepted == [] and again.duplicates == ["fc-1"]
        status = client.status("fc-1")
        assert status is not None and status.state == "accepted" and client.outcomes(["fc-1"]) == {"fc-1": None}

    monkeypatch.setenv("MAILPIPE_BROKER_URL", "redis://127.0.0.1:1/0")  # as for the workers: the variable wins
    with Client.from_config(path) as client:
        assert client.broker_url == "redis://127.0.0.1:1/0" and client.redis_url == redis_url
    path.write_text("[broker]\nurl = 5\n")
    with pytest.raises(ConfigError, match=r"broker\.url"):
        Client.from_config(path)


def test_the_public_surface_is_typed_and_importing_pipeline_imports_nothing_else() -> None:
    assert pipeline.__all__ == ["Client"] and pipeline.Client is Client
    import pipeline.client as module

    assert sorted(module.__all__) == [
        "Client",
        "DedupeInDatabase",
        "EventStatus",
        "InvalidEvent",
        "ItemError",
        "LeadEvent",
        "SubmitReport",
    ]
    assert all(getattr(module, name) is not None for name in module.__all__)
    assert (ROOT / "pipeline" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()
    code = "import sys, pipeline; print(sorted(m for m in sys.modules if m.startswith('pipeline')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, timeout=60)
    assert done.stdout.strip() == "['pipeline']"
    assert "redis_url='redis://u:***@h:1/0'" in repr(Client("stub://", "redis://u:secret@h:1/0"))


@pytest.mark.slow
def test_the_wheel_ships_the_py_typed_marker(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    for package in ("pipeline", "plugins"):
        subprocess.run(["cp", "-r", str(ROOT / package), str(source / package)], check=True)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [wheel] = wheels.glob("mailpipe-*.whl")
    assert "pipeline/py.typed" in zipfile.ZipFile(wheel).namelist()
