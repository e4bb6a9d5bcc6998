"""Header building: no CR, LF or NUL from lead data ever reaches the wire; long headers are folded."""

from __future__ import annotations

import time
from email import message_from_bytes, policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import HeaderInjection, MessageTooLarge
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, has_line_break
from pipeline.smtp.mime import UnsendableAddress, build_message, envelope_for

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéü", min_size=1, max_size=12)
WORDY = st.lists(WORD, min_size=1, max_size=120).map(" ".join)


def routed(
    subject: str = "s",
    to_name: str | None = None,
    headers: dict[str, str] | None = None,
    from_name: str | None = None,
    to: str = "lead@receiver.example",
) -> RoutedMessage:
    event = LeadEvent.model_construct(
        event_id="h",
        tenant="default",
        to=to,
        to_name=to_name,
        subject="s",
        text="t",
        data={},
        tags=[],
        metadata={},
        v=1,
        campaign=None,
        list_name=None,
        template=None,
        html=None,
        send_at=None,
    )
    message = RenderedMessage(event=event, subject=subject, text="body\n", headers=headers or {}, message_id="<id@x.example>")
    return RoutedMessage(
        message=message,
        account="a",
        route="default",
        from_addr="from@sender.example",
        from_name=from_name,
        envelope_from="from@sender.example",
        first_attempt_at=time.time(),
    )


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def assert_clean(data: bytes) -> None:
    block = header_block(data)
    assert b"\x00" not in block
    for line in block.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, line
        assert len(line) <= 998
    assert not block.replace(b"\r\n", b"").count(b"\r") and b"\n" not in block.replace(b"\r\n", b"")


@settings(max_examples=300, deadline=None)
@given(subject=ANY_TEXT, to_name=ANY_TEXT, from_name=ANY_TEXT, header_value=ANY_TEXT)
def test_no_cr_lf_or_nul_from_any_field_reaches_the_header_block(
    subject: str, to_name: str, from_name: str, header_value: str
) -> None:
    try:
        data = build_message(routed(subject, to_name, {"X-Campaign": header_value}, from_name), max_bytes=1_000_000)
    except HeaderInjection as exc:
        assert has_line_break(subject + to_name + from_name + header_value), exc
        return
    assert_clean(data)
    parsed = message_from_bytes(data, policy=policy.default)
    assert str(parsed["Subject"]) == subject.strip() or str(parsed["Subject"]).split() == subject.split()
    assert len(parsed.get_all("To")) == 1 and "Bcc" not in parsed


@settings(max_examples=100, deadline=None)
@given(WORDY)
def test_long_headers_are_folded_at_whitespace_to_78_columns_and_unfold_to_the_original(subject: str) -> None:
    data = build_message(routed(subject), max_bytes=1_000_000)
    lines = header_block(data).split(b"\r\n")
    subject_lines = []
    for line in lines:
        if line.startswith(b"Subject:"):
            subject_lines = [line]
        elif subject_lines and line[:1] in (b" ", b"\t") and len(subject_lines) < 1000:
            subject_lines.append(line)
        elif subject_lines:
            break
    assert all(len(line) <= 78 for line in subject_lines), subject_lines
    # every character survives in order; whitespace next to a wrapped encoded word may not (a CPython
    # folding bug: it can double or drop that one space), a known gap reported with this issue
    assert "".join(str(message_from_bytes(data, policy=policy.default)["Subject"]).split()) == "".join(subject.split())


@pytest.mark.parametrize("name", ["Bcc", "To", "bcc", "X-Bad\r\nBcc", "X Bad", "X:Bad", "Content-Type"])
def test_reserved_or_malformed_extra_header_names_are_refused(name: str) -> None:
    with pytest.raises(HeaderInjection):
        build_message(routed(headers={name: "victim@example.com"}), max_bytes=1_000_000)


def test_a_message_over_the_size_cap_is_refused_with_its_size() -> None:
    message = routed()
    message.message.text = "x" * 50_000
    with pytest.raises(MessageTooLarge, match="cap is 10000"):
        build_message(message, max_bytes=10_000)


def test_an_internationalised_domain_goes_out_in_its_ascii_form_without_smtputf8() -> None:
    message = routed(to="lead@bücher.example", to_name="Zoë")
    envelope = envelope_for(message)
    assert envelope.recipient == "lead@xn--bcher-kva.example" and not envelope.smtputf8
    data = build_message(message, max_bytes=100_000)
    assert data.isascii()
    assert str(message_from_bytes(data, policy=policy.default)["To"]) == "Zoë <lead@xn--bcher-kva.example>"


def test_a_non_ascii_local_part_needs_smtputf8_and_keeps_utf8_headers() -> None:
    message = routed(to="üser@bücher.example")
    envelope = envelope_for(message)
    assert envelope.smtputf8 and envelope.recipient == "üser@xn--bcher-kva.example"
    assert "üser@".encode() in build_message(message, max_bytes=100_000, smtputf8=True)
    with pytest.raises(UnsendableAddress):
        build_message(message, max_bytes=100_000, smtputf8=False)
