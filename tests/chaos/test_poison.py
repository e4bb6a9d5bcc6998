"""Poisoned messages never block the queue: each lands in the dead-letter store with its error."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import dramatiq
import pytest
import redis
from scenario import Figures, chaos_config, lead
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.runtime.broker import make_broker
from pipeline.runtime.enqueue import Enqueuer
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.chaos

GOOD = 300
EXPLODING_PLUGIN = """
from pipeline.plugin_host.hookspecs import hookimpl


@hookimpl
def mailpipe_prepare_message(account, message):
    if message.message.event.to.startswith("explode"):
        raise RuntimeError("plugin exploded on purpose")
"""


def test_a_raising_template_a_raising_plugin_and_garbage_messages_are_dead_lettered_while_the_rest_flows(
    tmp_path: Path,
    redis_url: str,
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for user, password in SMTP_USERS.items():
        monkeypatch.setenv(f"TEST_PW_{user.upper()}", password)
    plugin = tmp_path / "exploding.py"
    plugin.write_text(EXPLODING_PLUGIN)
    accounts = account_toml("alpha", smtp_server.ports["starttls"], tls_files.ca_file, per_second=300)
    path = chaos_config(tmp_path / "mailpipe.toml", redis_url, accounts, extra=f'\n[plugins]\npaths = ["{plugin}"]\n')
    (tmp_path / "templates" / "boom.subject").write_text("Boom")
    (tmp_path / "templates" / "boom.txt").write_text("{{ 1 // 0 }}")
    config = load_config(path)

    events: list[dict[str, object]] = []
    for i in range(GOOD):
        event = lead(i, "good")
        event.pop("list")
        events.append(event)
        if i % 100 == 50:
            events.append({"event_id": f"boom-{i}", "to": f"boom{i}@receiver.example", "template": "boom"})
            events.append({"event_id": f"explode-{i}", "to": f"explode{i}@receiver.example", "subject": "s", "text": "t"})
    figures = Figures("poison", len(events))
    started = time.monotonic()
    env = {f"TEST_PW_{u.upper()}": p for u, p in SMTP_USERS.items()}
    worker = WorkerProcess(path, processes=1, threads=8, env=env, log_path=tmp_path / "worker.log").start()
    try:
        broker = make_broker(config.broker)
        enqueuer = Enqueuer(broker)
        for stage in ("render", "route", "send", "classify"):
            enqueuer.send(stage, [f'{{"not": "a {stage} item"}}', f"not even json ({stage})"])
        no_items = dramatiq.Message(
            queue_name="mailpipe.send", actor_name="mailpipe_send", args=({"v": 1},), kwargs={}, options={}
        )
        broker.enqueue(no_items)
        report = Submitter(config, broker=broker).submit(events)
        assert len(report.accepted) == len(events)
        status = StatusStore(redis_client)
        deadline = time.monotonic() + 120
        outcomes = status.outcomes(report.accepted)
        while time.monotonic() < deadline and any(v is None for v in outcomes.values()):
            time.sleep(0.3)
            outcomes = status.outcomes(report.accepted)
    finally:
        worker.stop()
    recipients = [m.rcpt_to[0] for m in smtp_server.snapshot()]
    figures.count(outcomes, recipients, redis_client, started).report()

    by_kind = Counter((eid.split("-")[0], outcome) for eid, outcome in outcomes.items())
    assert by_kind == {("good", "sent"): GOOD, ("boom", "rejected"): 3, ("explode", "failed"): 3}, by_kind
    assert figures.unique_received == GOOD and figures.duplicates == 0
    dead = status.dead_letters()
    for eid in outcomes:
        if eid.startswith("boom"):
            assert "ZeroDivisionError" in dead[eid]["error"] and dead[eid]["stage"] == "render"
        elif eid.startswith("explode"):
            assert "plugin exploded on purpose" in dead[eid]["error"] and dead[eid]["stage"] == "route"
    garbage = [record for eid, record in dead.items() if eid.startswith("unknown:")]
    assert Counter(record["stage"] for record in garbage) == {"render": 2, "route": 2, "send": 3, "classify": 2}
    assert any("no items list" in record["error"] for record in garbage)
    assert "unknown" not in {o for o in outcomes.values()}
