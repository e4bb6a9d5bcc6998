"""`mailpipe status` reads queues, heartbeats, accounts and the events stream from a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import dramatiq
import redis
import typer
from typer.testing import CliRunner

from pipeline.cli import status as status_cmd
from pipeline.config import Config
from pipeline.limits.account_state import AccountState, Health
from pipeline.models import LeadEvent
from pipeline.runtime.broker import make_broker
from pipeline.runtime.enqueue import Enqueuer
from pipeline.state.status import StatusStore, Transition


def status_app() -> typer.Typer:
    app = typer.Typer()
    status_cmd.register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep `status` a named subcommand
    return app


def old_message_on(broker: dramatiq.Broker, queue: str, age: float) -> None:
    message = dramatiq.Message(queue_name=queue, actor_name="mailpipe_send", args=({"v": 1, "items": []},), kwargs={}, options={})
    message = message.copy(message_timestamp=int((time.time() - age) * 1000))
    broker.enqueue(message)


def test_status_shows_queue_depth_and_oldest_age_workers_account_health_and_last_hour_outcomes(
    config: Config, write_config: object, redis_client: redis.Redis
) -> None:
    broker = make_broker(config.broker)
    Enqueuer(broker)
    old_message_on(broker, "mailpipe.send", age=300)
    old_message_on(broker, "mailpipe.send", age=5)
    now_ms = time.time() * 1000
    redis_client.zadd(f"{config.broker.namespace}:__heartbeats__", {"w-alive": now_ms, "w-gone": now_ms - 600_000})
    AccountState(redis_client).pause("beta", "auth failed: 535 5.7.8", Health.AUTH_FAILED)
    store = StatusStore(redis_client)
    events = [LeadEvent(event_id=f"s{i}", to=f"a{i}@x.example", template="hello") for i in range(3)]
    store.accept(events)
    store.record(
        [Transition("default", "s0", "sent"), Transition("default", "s1", "bounced"), Transition("default", "s2", "deferred")]
    )

    result = CliRunner().invoke(status_app(), ["status"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    send_row = next(line for line in lines if "mailpipe.send" in line)
    cells = send_row.replace("│", " ").split()
    assert cells[:5] == ["mailpipe.send", "2", "0", "0", "0"]
    assert cells[5].endswith("m") and 4 <= float(cells[5][:-1]) <= 6  # the 300 s old head, shown in minutes
    assert "Workers (broker heartbeats): 2 alive, 1 gone" in result.output  # w-alive and this test's own broker
    beta = next(line for line in lines if line.replace("│", " ").split()[:1] == ["beta"])
    assert "auth_failed" in beta and "500 / 500/s" in beta
    last_hour = {tuple(line.replace("│", " ").split()) for line in lines}
    assert ("accepted", "3") in last_hour and ("sent", "1") in last_hour and ("bounced", "1") in last_hour
    assert "pending 1" in result.output


def test_status_json_carries_what_the_tables_show(config: Config, write_config: object, redis_client: redis.Redis) -> None:
    broker = make_broker(config.broker)
    Enqueuer(broker)
    old_message_on(broker, "mailpipe.send", age=300)
    AccountState(redis_client).pause("beta", "auth failed: 535 5.7.8", Health.AUTH_FAILED)
    store = StatusStore(redis_client)
    store.accept([LeadEvent(event_id="j0", to="a0@x.example", template="hello")])
    store.record([Transition("default", "j0", "sent")])

    result = CliRunner().invoke(status_app(), ["status", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    send = next(q for q in data["queues"] if q["queue"] == "mailpipe.send")
    assert send["ready"] == 1 and 295 <= send["oldest_age"] <= 330
    assert any(w["alive"] for w in data["workers"])
    beta = next(a for a in data["accounts"] if a["name"] == "beta")
    assert beta["health"] == "auth_failed" and "535" in beta["reason"]
    assert data["last_hour"]["sent"] == 1 and data["last_hour"]["accepted"] == 1
    assert data["totals"]["pending"] == 0 and data["tenant"] == "default"
    both = CliRunner().invoke(status_app(), ["status", "--json", "--watch"])
    assert both.exit_code == 2 and "drop --watch" in both.output


def test_status_watch_refreshes_until_told_to_stop(config: Config, write_config: object, redis_client: redis.Redis) -> None:
    started = time.monotonic()
    args = ["status", "--watch", "--interval", "0.2", "--iterations", "3"]
    result = CliRunner().invoke(status_app(), args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.4
    assert "Accounts" in result.output


def test_status_says_redis_is_unavailable_instead_of_crashing(write_config: Callable[..., Path], redis_url: str) -> None:
    path = write_config()
    path.write_text(path.read_text().replace(f'url = "{redis_url}"', 'url = "redis://127.0.0.1:1/0"'))
    result = CliRunner().invoke(status_app(), ["status", "-c", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "Redis unavailable" in result.output
