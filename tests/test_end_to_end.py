"""The whole pipeline through real worker processes, real Redis and a real SMTP server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis
from eventually import wait_until_final

from pipeline.config import load_config
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.state.status import StatusStore
from pipeline.state.suppression import SuppressionStore
from pipeline.submit import Submitter

ROUTE_OF = {0: ("nordics", "alpha"), 1: ("outreach", "beta"), 2: ("default", "gamma")}


def lead(i: int) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": f"e2e-{i:04d}",
        "to": f"lead{i}@receiver.example",
        "to_name": f"Lead {i}",
        "template": "hello",
        "data": {"first_name": f"Name{i}", "company": f"Co{i}"},
    }
    if i % 3 == 0:
        event["list"] = "nordics"
    elif i % 3 == 1:
        event["campaign"] = "outreach"
    return event


def test_two_hundred_events_across_three_routes_are_each_received_once_with_their_route_identity(
    write_config: Callable[..., Path], smtp_server: DevSMTPServer, start_workers: Callable[..., object], redis_client: redis.Redis
) -> None:
    path = write_config()
    config = load_config(path)
    start_workers(path, processes=2, threads=8)
    report = Submitter(config).submit([lead(i) for i in range(200)])
    assert len(report.accepted) == 200 and not report.errors

    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90)
    assert Counter(outcomes.values()) == {"sent": 200}

    received = smtp_server.wait_for(200, timeout=10)
    by_recipient = Counter(r.rcpt_to[0] for r in received)
    assert len(received) == 200 and set(by_recipient.values()) == {1}
    for message in received:
        i = int(message.rcpt_to[0].removeprefix("lead").split("@")[0])
        _route, account = ROUTE_OF[i % 3]
        assert message.auth_user == account
        assert message.header("From") == f"{account.title()} Sender <{account}@sender.example>"
        assert message.header("Reply-To") == f"replies-{account}@sender.example"
        assert message.header("To") == f"Lead {i} <lead{i}@receiver.example>"
        assert message.header("Subject") == f"Hello Name{i}"
        body = message.message.get_body(("plain",))
        assert body is not None and f"Hi Name{i}, welcome to Co{i}." in body.get_content()
        assert message.mail_from == f"{account}@sender.example"


def test_suppressed_missing_variable_and_bounces_end_in_their_own_outcomes(
    write_config: Callable[..., Path], smtp_server: DevSMTPServer, start_workers: Callable[..., object], redis_client: redis.Redis
) -> None:
    answers: dict[str, list[str]] = {"flaky": ["451 4.3.0 Temporary local problem, try later"]}

    def responder(address: str, server: DevSMTPServer) -> str | None:
        local = address.split("@")[0]
        if local == "nobody":
            return "550 5.1.1 <nobody@receiver.example>: Recipient address rejected: User unknown"
        if local == "blocked":
            return "550 5.7.1 Service unavailable; client host blocked using a reputation list"
        if local == "flaky" and answers["flaky"]:
            return answers["flaky"].pop()
        return None

    smtp_server.rcpt_responder = responder
    path = write_config()
    config = load_config(path)
    suppression = SuppressionStore(redis_client)
    suppression.add("default", "Unsubscribed@Receiver.example", "unsubscribed")
    start_workers(path)
    events = [
        {
            "event_id": "sup",
            "to": "unsubscribed@receiver.example",
            "template": "hello",
            "data": {"first_name": "A", "company": "B"},
        },
        {"event_id": "novar", "to": "novar@receiver.example", "template": "hello", "data": {"first_name": "A"}},
        {"event_id": "hard", "to": "nobody@receiver.example", "template": "hello", "data": {"first_name": "A", "company": "B"}},
        {
            "event_id": "reputation",
            "to": "blocked@receiver.example",
            "template": "hello",
            "data": {"first_name": "A", "company": "B"},
        },
        {"event_id": "retry", "to": "flaky@receiver.example", "template": "hello", "data": {"first_name": "A", "company": "B"}},
    ]
    report = Submitter(config).submit(events)
    status = StatusStore(redis_client)
    outcomes = wait_until_final(status, report.accepted, timeout=60)

    assert outcomes == {"sup": "suppressed", "novar": "rejected", "hard": "bounced", "reputation": "bounced", "retry": "sent"}
    received = {r.rcpt_to[0] for r in smtp_server.snapshot()}
    assert received == {"flaky@receiver.example"}

    novar = status.get("default", "novar")
    assert novar is not None and "company" in novar.history[-1]["error"]
    assert "novar" in status.dead_letters()

    hard, soft = suppression.lookup("default", ["nobody@receiver.example", "blocked@receiver.example"])
    assert hard is not None and hard.reason == "user_unknown"
    assert soft is None

    retry = status.get("default", "retry")
    assert retry is not None
    assert [h["state"] for h in retry.history] == ["accepted", "deferred", "sent"]
    assert retry.history[1]["code"] == 451 and retry.history[2]["attempt"] == 2


def test_bad_events_are_refused_at_submit_naming_the_field_and_kept(config: object, redis_client: redis.Redis) -> None:
    from pipeline.config import Config

    assert isinstance(config, Config)
    report = Submitter(config).submit(
        [
            {"to": "a@b.example", "template": "hello"},
            {"event_id": "x1", "to": "not-an-address", "template": "hello"},
            {"event_id": "x2", "to": "a@b.example", "subject": "Hi\r\nBcc: victim@example.com", "text": "x"},
            {"event_id": "x3", "to": "a@b.example", "subject": "s" * 5000, "text": "x"},
            {"event_id": "ok", "to": "a@b.example", "template": "hello"},
        ]
    )
    assert report.accepted == ["ok"]
    errors = {e.index: " ".join(e.errors) for e in report.errors}
    assert "event_id" in errors[0] and "Field required" in errors[0]
    assert errors[1].startswith("to:")
    assert "subject" in errors[2] and "CR, LF" in errors[2]
    assert "subject" in errors[3] and "998" in errors[3]
    assert redis_client.llen("mailpipe:default:refused") == 4


def test_a_duplicate_submit_is_not_accepted_twice(config: object, redis_client: redis.Redis) -> None:
    from pipeline.config import Config

    assert isinstance(config, Config)
    submitter = Submitter(config)
    event = {"event_id": "dup", "to": "a@b.example", "template": "hello"}
    first = submitter.submit([event])
    second = submitter.submit([event, event])
    assert first.accepted == ["dup"]
    assert second.accepted == [] and second.duplicates == ["dup", "dup"]


def test_a_stopped_worker_says_quit_on_every_smtp_session_it_held(
    write_config: Callable[..., Path], smtp_server: DevSMTPServer, start_workers: Callable[..., object], redis_client: redis.Redis
) -> None:
    path = write_config()
    worker = start_workers(path, processes=1, threads=4)
    report = Submitter(load_config(path)).submit([lead(i) for i in range(30)])
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90)
    assert Counter(outcomes.values()) == {"sent": 30}
    assert smtp_server.quits == 0  # sessions stay pooled while the worker runs
    worker.stop()  # type: ignore[attr-defined]
    assert smtp_server.quits >= 3  # one pooled session per account used (alpha, beta, gamma) at least
