"""The IMAP poller against a real Dovecot: replies, auto-replies, DSNs and ARF reports end as events
on the mail they answer; restarts, UIDVALIDITY changes and dropped connections repeat and lose nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eventually import eventually
from inbox_mails import GARBAGE, arf, auto_reply, dsn, huge_reply, reply, unrelated

from pipeline.config import load_config
from pipeline.context import StageContext, build_context
from pipeline.inbox.index import MessageIndex
from pipeline.inbox.poller import Poller, PollStats, mailboxes_of, watch_once
from pipeline.models import LeadEvent
from pipeline.observe.metrics import REGISTRY
from pipeline.smtp.mime import message_id_for
from pipeline.state import keys
from pipeline.state.status import Transition


def send_originals(ctx: StageContext, recipients: dict[str, str]) -> dict[str, str]:
    """Accept and mark `sent` one event per id (as the pipeline would); returns id → Message-ID."""
    events = [LeadEvent(event_id=eid, to=to, subject="Hello", text="Hi") for eid, to in recipients.items()]
    assert all(ctx.status.accept(events))
    ctx.status.record([Transition("default", eid, "sent", {"stage": "classify"}) for eid in recipients])
    ids = {eid: message_id_for("default", eid, ctx.config.message_id_domain()) for eid in recipients}
    MessageIndex(ctx.redis).remember([("default", mid, eid) for eid, mid in ids.items()])
    return ids


def states(ctx: StageContext, event_ids: list[str]) -> dict[str, str]:
    return {eid: ctx.status.get("default", eid).state for eid in event_ids}  # type: ignore[union-attr]


def poll_once(ctx: StageContext) -> PollStats:
    (mailbox,) = mailboxes_of(ctx.config)
    return Poller(mailbox, ctx).run(once=True)


@pytest.fixture
def inbox_ctx(imap_config: Callable[..., Path]) -> Callable[..., StageContext]:
    def make(**imap: object) -> StageContext:
        return build_context(load_config(imap_config(**imap)))

    return make


@pytest.fixture
def running() -> Iterator[Callable[[StageContext], tuple[Poller, threading.Thread]]]:
    """Start a poller on a thread (as a worker would); stopped and joined after the test."""
    started: list[tuple[Poller, threading.Thread]] = []

    def start(ctx: StageContext) -> tuple[Poller, threading.Thread]:
        (mailbox,) = mailboxes_of(ctx.config)
        poller = Poller(mailbox, ctx, threading.Event())
        thread = threading.Thread(target=poller.run, daemon=True)
        thread.start()
        started.append((poller, thread))
        return poller, thread

    yield start
    for poller, thread in started:
        poller.stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the poller did not stop"


def test_replies_autoreplies_bounces_and_complaints_end_on_their_original_events(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(
        ctx,
        {
            "ev-reply": "lead@customer.example",
            "ev-auto": "away@customer.example",
            "ev-bounce": "gone@customer.example",
            "ev-arf": "angry@customer.example",
            "ev-quiet": "quiet@customer.example",
        },
    )
    dovecot.append(reply(ids["ev-reply"]))
    dovecot.append(auto_reply(ids["ev-auto"]))
    dovecot.append(dsn(ids["ev-bounce"]))
    dovecot.append(arf(ids["ev-arf"]))
    dovecot.append(unrelated())
    dovecot.append(reply("<someone-else@elsewhere.example>", message_id="<other@customer.example>"))

    stats = poll_once(ctx)

    assert states(ctx, list(ids)) == {
        "ev-reply": "replied",
        "ev-auto": "autoresponded",
        "ev-bounce": "bounced",
        "ev-arf": "complained",
        "ev-quiet": "sent",
    }
    assert stats.counts == {"reply": 1, "autoreply": 1, "bounce": 1, "complaint": 1, "ignored": 2}
    replied = ctx.status.get("default", "ev-reply").history[-1]  # type: ignore[union-attr]
    assert replied["from"] == "lead@customer.example"
    assert replied["snippet"] == "Yes, let's talk on Tuesday. Best, Lea"
    assert replied["sent_at"] == 1736241300.0
    assert replied["mailbox"] == "account:alpha"
    bounced = ctx.status.get("default", "ev-bounce").history[-1]  # type: ignore[union-attr]
    assert (bounced["reason"], bounced["kind"], bounced["status"]) == ("user_unknown", "hard", "5.1.1")
    suppressed = {s.address: s.reason for s in ctx.suppression.all("default")}
    assert suppressed == {"gone@customer.example": "user_unknown", "angry@customer.example": "complaint"}
    stream = ctx.redis.xrange(keys.events_stream("default"))
    inbox_states = [e[b"state"].decode() for _, e in stream if b'"stage": "inbox"' in e[b"entry"]]
    assert sorted(inbox_states) == ["autoresponded", "bounced", "complained", "replied"]


def test_a_bounce_after_sent_is_a_status_update_not_a_second_outcome(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(ctx, {"ev-1": "gone@customer.example"})
    dovecot.append(dsn(ids["ev-1"]))

    poll_once(ctx)

    status = ctx.status.get("default", "ev-1")
    assert status is not None and (status.state, status.outcome) == ("bounced", "sent")
    assert [h["state"] for h in status.history] == ["accepted", "sent", "bounced"]
    assert ctx.status.outcome_counts() == {"accepted": 1, "sent": 1}


def test_bounces_and_complaints_from_the_mailbox_are_counted_in_the_metrics(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(ctx, {"ev-b": "gone@customer.example", "ev-c": "angry@customer.example"})
    dovecot.append(dsn(ids["ev-b"]))
    dovecot.append(arf(ids["ev-c"]))
    bounce_labels = {"account": "alpha", "provider": "smtp", "reason": "user_unknown", "kind": "hard"}
    complaint_labels = {"provider": "smtp", "reason": "feedback"}

    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = sample("mailpipe_bounces_total", bounce_labels), sample("mailpipe_complaints_total", complaint_labels)
    poll_once(ctx)
    after = sample("mailpipe_bounces_total", bounce_labels), sample("mailpipe_complaints_total", complaint_labels)

    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 1.0)


def test_a_soft_bounce_counts_toward_suppression_without_suppressing_at_once(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(ctx, {"ev-full": "full@customer.example"})
    dovecot.append(
        dsn(
            ids["ev-full"],
            recipient="full@customer.example",
            status="4.2.2",
            diagnostic="452 4.2.2 <full@customer.example>: Mailbox full",
        )
    )

    poll_once(ctx)

    assert states(ctx, ["ev-full"]) == {"ev-full": "bounced"}
    assert ctx.suppression.all("default") == []
    assert ctx.redis.zcard(keys.soft_bounces("default", "full@customer.example")) == 1


def test_a_restarted_poller_reads_nothing_twice_and_resumes_after_the_last_uid(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(ctx, {"ev-a": "a@customer.example", "ev-b": "b@customer.example"})
    dovecot.append(reply(ids["ev-a"], message_id="<r-a@customer.example>"))
    dovecot.append(unrelated(1))
    first = poll_once(ctx)
    history_before = len(ctx.status.get("default", "ev-a").history)  # type: ignore[union-attr]

    again = poll_once(build_context(ctx.config))  # a new process: nothing but Redis carries over
    dovecot.append(reply(ids["ev-b"], message_id="<r-b@customer.example>"))
    after_new_mail = poll_once(build_context(ctx.config))

    assert first.counts == {"reply": 1, "ignored": 1}
    assert again.counts == {}
    assert after_new_mail.counts == {"reply": 1}
    assert len(ctx.status.get("default", "ev-a").history) == history_before  # type: ignore[union-attr]
    assert states(ctx, ["ev-a", "ev-b"]) == {"ev-a": "replied", "ev-b": "replied"}
    cursor = ctx.redis.hgetall(keys.inbox_cursor("account:alpha", "INBOX"))
    assert int(cursor[b"last_uid"]) == 3


def test_a_changed_uidvalidity_rescans_the_folder_without_repeating_events(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx(folders=["Bounces"])
    ids = send_originals(ctx, {"ev-1": "gone@customer.example", "ev-2": "lead@customer.example"})
    dovecot.append(dsn(ids["ev-1"]), folder="Bounces")
    poll_once(ctx)
    old_validity = ctx.redis.hget(keys.inbox_cursor("account:alpha", "Bounces"), "uidvalidity")

    conn = dovecot.client()  # the mailbox is rebuilt: same mail again, new UIDVALIDITY, plus one new message
    assert conn.delete('"Bounces"')[0] == "OK"
    conn.logout()
    dovecot.append(dsn(ids["ev-1"]), folder="Bounces")
    dovecot.append(reply(ids["ev-2"]), folder="Bounces")
    rescan = poll_once(build_context(ctx.config))

    assert ctx.redis.hget(keys.inbox_cursor("account:alpha", "Bounces"), "uidvalidity") != old_validity
    assert rescan.counts == {"already_seen": 1, "reply": 1}
    assert [h["state"] for h in ctx.status.get("default", "ev-1").history] == ["accepted", "sent", "bounced"]  # type: ignore[union-attr]


def test_mail_is_only_peeked_never_flagged_moved_or_deleted_by_default(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(ctx, {"ev-1": "lead@customer.example"})
    dovecot.append(reply(ids["ev-1"]))
    dovecot.append(dsn(ids["ev-1"]))

    poll_once(ctx)

    flags = dovecot.messages("INBOX")
    assert [uid for uid, _ in flags] == [1, 2]
    assert not any("\\Seen" in f or "\\Deleted" in f for _, f in flags), flags


def test_processed_mail_is_moved_when_configured_and_other_mail_stays(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx(move_processed_to="Processed")
    ids = send_originals(ctx, {"ev-1": "gone@customer.example"})
    conn = dovecot.client()
    conn.create('"Processed"')
    conn.logout()
    dovecot.append(dsn(ids["ev-1"]))
    dovecot.append(unrelated())

    poll_once(ctx)

    assert [uid for uid, _ in dovecot.messages("INBOX")] == [2]
    assert len(dovecot.messages("Processed")) == 1


def test_huge_and_malformed_messages_never_stop_the_poller(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx(max_message_bytes=8192)
    ids = send_originals(ctx, {"ev-big": "lead@customer.example", "ev-after": "b@customer.example"})
    dovecot.append(huge_reply(ids["ev-big"], 3_000_000))
    dovecot.append(GARBAGE)
    dovecot.append(reply(ids["ev-after"], message_id="<after@customer.example>"))

    stats = poll_once(ctx)

    assert stats.counts == {"reply": 2, "ignored": 1}
    big = ctx.status.get("default", "ev-big").history[-1]  # type: ignore[union-attr]
    assert big["state"] == "replied" and big["truncated"] is True
    assert states(ctx, ["ev-after"]) == {"ev-after": "replied"}


def test_idle_sees_new_mail_long_before_the_poll_interval(dovecot, inbox_ctx, running) -> None:
    ctx = inbox_ctx(poll_interval=3600, idle_timeout=600)
    ids = send_originals(ctx, {"ev-1": "lead@customer.example"})
    poller, _ = running(ctx)
    assert eventually(lambda: poller.stats.syncs, lambda n: n >= 1, timeout=20) >= 1
    assert eventually(dovecot.sessions, lambda n: n >= 1, timeout=10) >= 1

    dovecot.append(reply(ids["ev-1"]))

    assert eventually(lambda: states(ctx, ["ev-1"])["ev-1"], lambda s: s == "replied", timeout=20) == "replied"
    assert poller.stats.idle_wakeups >= 1


def test_interval_polling_is_used_when_idle_is_off(dovecot, inbox_ctx, running) -> None:
    ctx = inbox_ctx(idle=False, poll_interval=0.2)
    ids = send_originals(ctx, {"ev-1": "lead@customer.example"})
    poller, _ = running(ctx)
    assert eventually(lambda: poller.stats.syncs, lambda n: n >= 1, timeout=20) >= 1

    dovecot.append(reply(ids["ev-1"]))

    assert eventually(lambda: states(ctx, ["ev-1"])["ev-1"], lambda s: s == "replied", timeout=20) == "replied"
    # A sync is counted once all its folders are read: the reply can be applied a moment before.
    assert eventually(lambda: poller.stats.syncs, lambda n: n >= 2, timeout=10) >= 2
    assert poller.stats.idle_wakeups == 0


@pytest.mark.chaos
def test_a_connection_killed_while_idling_is_reopened_and_no_mail_is_missed(dovecot, inbox_ctx, running) -> None:
    ctx = inbox_ctx(poll_interval=3600)
    ids = send_originals(ctx, {"ev-1": "a@customer.example", "ev-2": "b@customer.example"})
    dovecot.append(reply(ids["ev-1"], message_id="<r1@customer.example>"))
    poller, _ = running(ctx)
    assert eventually(lambda: states(ctx, ["ev-1"])["ev-1"], lambda s: s == "replied", timeout=20) == "replied"
    assert eventually(dovecot.sessions, lambda n: n >= 1, timeout=10) >= 1

    print(dovecot.kick())
    dovecot.append(reply(ids["ev-2"], message_id="<r2@customer.example>"))

    assert eventually(lambda: states(ctx, ["ev-2"])["ev-2"], lambda s: s == "replied", timeout=30) == "replied"
    assert poller.stats.connects >= 2 and poller.stats.errors >= 1
    assert len(ctx.status.get("default", "ev-1").history) == 3  # type: ignore[union-attr]


@pytest.mark.chaos
def test_the_poller_outlives_an_imap_server_restart(dovecot, inbox_ctx, running) -> None:
    ctx = inbox_ctx(poll_interval=3600)
    ids = send_originals(ctx, {"ev-1": "a@customer.example", "ev-2": "b@customer.example"})
    dovecot.append(reply(ids["ev-1"], message_id="<r1@customer.example>"))
    poller, _ = running(ctx)
    assert eventually(lambda: states(ctx, ["ev-1"])["ev-1"], lambda s: s == "replied", timeout=20) == "replied"

    dovecot.stop()
    assert eventually(lambda: poller.stats.errors, lambda n: n >= 1, timeout=20) >= 1
    dovecot.start()
    dovecot.append(reply(ids["ev-2"], message_id="<r2@customer.example>"))

    assert eventually(lambda: states(ctx, ["ev-2"])["ev-2"], lambda s: s == "replied", timeout=60) == "replied"
    assert poller.stats.connects >= 2
    assert len(ctx.status.get("default", "ev-1").history) == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_mailboxes_are_read_with_the_certificate_verified(dovecot, inbox_ctx, tls_files, security) -> None:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    ctx = inbox_ctx(security=security, port=port, allow_plaintext_auth=False, ca_file=tls_files.ca_file, host="localhost")
    ids = send_originals(ctx, {"ev-1": "lead@customer.example"})
    dovecot.append(reply(ids["ev-1"]))

    assert poll_once(ctx).counts == {"reply": 1}


def test_a_server_certificate_from_an_unknown_ca_is_refused(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx(security="tls", port=dovecot.tls_port, allow_plaintext_auth=False, host="localhost")

    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        poll_once(ctx)


def test_a_wrong_password_is_reported_without_the_password(dovecot, inbox_ctx, monkeypatch) -> None:
    monkeypatch.setenv("TEST_IMAP_WRONG", "not-the-pw-123")
    ctx = inbox_ctx(password="env:TEST_IMAP_WRONG")

    with pytest.raises(Exception, match="login as bounces failed") as failure:
        poll_once(ctx)

    assert "not-the-pw-123" not in str(failure.value)


def test_watch_once_reads_every_configured_mailbox(dovecot, inbox_ctx) -> None:
    ctx = inbox_ctx()
    ids = send_originals(ctx, {"ev-1": "lead@customer.example"})
    dovecot.append(reply(ids["ev-1"]))

    results = watch_once(ctx.config)

    assert {name: stats.counts for name, stats in results.items()} == {"account:alpha": {"reply": 1}}
