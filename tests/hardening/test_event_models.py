"""Untrusted lead events: any input is either a clean LeadEvent or an InvalidEvent naming the field."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InvalidEvent
from pipeline.models import MAX_EVENT_BYTES, LeadEvent, parse_event

HEADER_FIELDS = ("event_id", "campaign", "list_name", "to_name", "subject")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
NASTY = ["a", "@", ".", "\r", "\n", "\x00", " ", "é", "\u2028", "<", ">", '"', "ü"]
nasty_text = st.text(alphabet=st.sampled_from(NASTY), max_size=40)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": nasty_text | json_values,
        "tenant": nasty_text,
        "to": nasty_text | st.emails(),
        "to_name": nasty_text,
        "subject": nasty_text,
        "text": nasty_text,
        "template": nasty_text,
        "campaign": nasty_text,
        "list": nasty_text,
        "data": json_values,
        "tags": st.lists(nasty_text, max_size=3),
        "metadata": json_values,
        "send_at": nasty_text | st.integers(),
        "extra_field": json_values,
    },
)


def check(result: LeadEvent) -> None:
    for name in HEADER_FIELDS:
        value = getattr(result, name)
        assert value is None or not any(c in value for c in "\r\n\x00"), name
    assert "@" in result.to and not any(c in result.to for c in "\r\n\x00 <>")


@settings(max_examples=400, deadline=None)
@given(event_like)
def test_any_event_shaped_input_is_a_clean_event_or_an_invalid_event_naming_its_fields(raw: dict[str, Any]) -> None:
    try:
        result = parse_event(raw)
    except InvalidEvent as exc:
        assert exc.errors and all(":" in e for e in exc.errors)
        return
    check(result)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_bytes_and_text_never_raise_anything_but_invalid_event(raw: bytes | str) -> None:
    try:
        check(parse_event(raw))
    except InvalidEvent as exc:
        assert exc.errors


def test_an_oversized_event_is_refused_before_it_is_parsed() -> None:
    huge = json.dumps({"event_id": "x", "to": "a@b.example", "subject": "s", "text": "t" * MAX_EVENT_BYTES})
    try:
        parse_event(huge)
    except InvalidEvent as exc:
        assert "larger than" in exc.errors[0]
    else:
        raise AssertionError("an oversized event was accepted")


def test_oversized_fields_and_data_are_refused_by_name() -> None:
    for field, value, word in (
        ("data", {"k": "v" * 70_000}, "data"),
        ("html", "h" * 600_000, "html"),
        ("tags", ["t"] * 51, "tags"),
        ("to_name", "n" * 1000, "to_name"),
    ):
        raw = {"event_id": "x", "to": "a@b.example", "subject": "s", "text": "t", field: value}
        try:
            parse_event(raw)
        except InvalidEvent as exc:
            assert any(e.startswith(word) for e in exc.errors), exc.errors
        else:
            raise AssertionError(f"oversized {field} accepted")
