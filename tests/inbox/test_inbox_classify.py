"""Telling replies from auto-replies, bounces and complaints, and finding the event each one answers."""

from __future__ import annotations

import time

import pytest
from inbox_mails import GARBAGE, arf, auto_reply, dsn, reply, unrelated

from pipeline.context import StageContext
from pipeline.inbox.autoreply import is_auto_reply
from pipeline.inbox.classify import Kind, classify_message
from pipeline.inbox.index import MessageIndex, message_ids_in, normalise_message_id
from pipeline.inbox.message import read_message
from pipeline.inbox.snippet import reply_snippet
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, SendReply, SendResult
from pipeline.smtp.mime import message_id_for
from pipeline.stages import classify as classify_stage
from pipeline.state import keys

DOMAIN = "mail.sender.example"


@pytest.fixture
def index(redis_client) -> MessageIndex:
    index = MessageIndex(redis_client)
    index.remember(
        [("default", message_id_for("default", "ev-1", DOMAIN), "ev-1"), ("acme", message_id_for("acme", "ev-9", DOMAIN), "ev-9")]
    )
    redis_client.sadd(keys.tenants(), "default", "acme")
    return index


def test_the_classify_stage_indexes_the_message_id_of_every_sent_message(ctx: StageContext) -> None:
    event = LeadEvent(event_id="ev-sent", to="lead@customer.example", subject="Hi", text="Hello")
    ctx.status.accept([event])
    message_id = message_id_for("default", "ev-sent", ctx.config.message_id_domain())
    routed = RoutedMessage(
        message=RenderedMessage(event=event, subject="Hi", text="Hello", message_id=message_id),
        account="alpha",
        route="default",
        from_addr="alpha@sender.example",
        envelope_from="alpha@sender.example",
        first_attempt_at=time.time(),
    )
    classify_stage.handle([SendResult(routed=routed, reply=SendReply(account="alpha", code=250, text="2.0.0 Ok"))], ctx)

    found = MessageIndex(ctx.redis).find([message_id.upper()])

    assert found is not None and (found.tenant, found.event_id) == ("default", "ev-sent")


def test_a_reply_is_found_through_in_reply_to_in_any_tenant(index: MessageIndex) -> None:
    finding = classify_message(reply(message_id_for("acme", "ev-9", DOMAIN)), index, DOMAIN)

    assert finding.kind == Kind.REPLY
    assert finding.ref is not None and (finding.ref.tenant, finding.ref.event_id) == ("acme", "ev-9")


def test_a_reply_deep_in_a_thread_is_found_through_references(index: MessageIndex) -> None:
    ours = message_id_for("default", "ev-1", DOMAIN)
    thread = " ".join([ours] + [f"<m{i}@customer.example>" for i in range(60)])
    finding = classify_message(reply("<m59@customer.example>", references=thread), index, DOMAIN)

    assert finding.kind == Kind.REPLY and finding.ref is not None and finding.ref.event_id == "ev-1"


def test_each_kind_of_mail_is_told_apart(index: MessageIndex) -> None:
    ours = message_id_for("default", "ev-1", DOMAIN)
    kinds = {
        "reply": classify_message(reply(ours), index, DOMAIN).counter,
        "auto": classify_message(auto_reply(ours), index, DOMAIN).counter,
        "dsn": classify_message(dsn(ours), index, DOMAIN).counter,
        "arf": classify_message(arf(ours), index, DOMAIN).counter,
        "noise": classify_message(unrelated(), index, DOMAIN).counter,
        "stranger": classify_message(reply("<x@elsewhere.example>"), index, DOMAIN).counter,
        "garbage": classify_message(GARBAGE, index, DOMAIN).counter,
        "lost_dsn": classify_message(dsn("<not-ours@elsewhere.example>"), index, DOMAIN).counter,
    }
    assert kinds == {
        "reply": "reply",
        "auto": "autoreply",
        "dsn": "bounce",
        "arf": "complaint",
        "noise": "ignored",
        "stranger": "ignored",
        "garbage": "ignored",
        "lost_dsn": "bounce_unmatched",
    }


def test_a_copy_of_our_own_message_is_not_a_reply(index: MessageIndex) -> None:
    ours = message_id_for("default", "ev-1", DOMAIN)
    own = reply(ours, message_id=ours)

    assert classify_message(own, index, DOMAIN).kind == Kind.IGNORED


def test_a_bounce_without_the_original_headers_is_matched_by_its_verp_address(index: MessageIndex) -> None:
    token = message_id_for("default", "ev-1", DOMAIN)[1:33]
    mail = dsn("<lost@nowhere.example>", to=f"bounces+{token}@sender.example").replace(
        b"Message-ID: <lost@nowhere.example>\r\n", b""
    )

    finding = classify_message(mail, index, DOMAIN)

    assert finding.kind == Kind.BOUNCE and finding.ref is not None and finding.ref.event_id == "ev-1"


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "Precedence: auto_reply",
        "Precedence: bulk\r\nSubject: Out of office",
        "Subject: Automatic reply: Hello",
        "Subject: Abwesenheitsnotiz: Hallo",
    ],
)
def test_auto_reply_signs_are_recognised(headers: str) -> None:
    raw = f"From: a@b.example\r\n{headers}\r\n\r\nAway.\r\n".encode()
    assert is_auto_reply(read_message(raw))


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: no\r\nSubject: Re: Hello",
        "Subject: Re: Vacation plans for the team",
        "Precedence: bulk\r\nSubject: Our weekly newsletter",
        "Subject: Re: out of office supplies",
    ],
)
def test_human_replies_are_not_auto_replies(headers: str) -> None:
    raw = f"From: a@b.example\r\n{headers}\r\n\r\nSounds good.\r\n".encode()
    assert not is_auto_reply(read_message(raw))


def test_the_snippet_keeps_the_new_words_and_drops_quotes_signatures_and_outlook_headers() -> None:
    outlook = "Thanks, send the contract.\r\n\r\n________________________________\r\nFrom: Alpha\r\nSent: Monday\r\n> old"
    gmail = "Sure!\n\nOn Mon, 6 Jan 2025 at 09:00, Alpha <a@b.example> wrote:\n> Hi"
    signed = "Call me.\n-- \nLea, +1 555 0100"

    assert [reply_snippet(outlook), reply_snippet(gmail), reply_snippet(signed)] == [
        "Thanks, send the contract.",
        "Sure!",
        "Call me.",
    ]
    assert len(reply_snippet("word " * 1000)) == 280


def test_message_ids_are_compared_in_one_normal_form() -> None:
    assert normalise_message_id("  <ABC.def@Mail.Example>  ") == "<abc.def@mail.example>"
    assert normalise_message_id("abc@mail.example") == "<abc@mail.example>"
    assert normalise_message_id("no-at-sign") is None
    assert normalise_message_id("<" + "a" * 300 + "@x>") is None
    assert message_ids_in("<a@x> <b@y>\r\n <c@z>") == ["<a@x>", "<b@y>", "<c@z>"]
    assert len(message_ids_in(" ".join(f"<m{i}@x>" for i in range(500)))) == 40
