"""Bounce mails → BounceReport: snapshot of the parser on fixtures (LF and CRLF), fuzzing, hooks, CLI.

`fixtures/bounces/expected.json` was dumped from the parser itself, so the snapshot tests only detect a
change in its answers; they do not prove the answers right. What measures the parser is the hand-labelled
corpus (`tests/test_bounce_corpus.py`, `tests/test_bounces_blind.py`). After an intended change, re-dump
the snapshot and review its diff."""

from __future__ import annotations

import json
import logging
import random
from email import message_from_bytes
from pathlib import Path

import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.bounces import BounceCategory, BounceReport, parse_bounce, to_json_dict
from pipeline.bounces import parse as bounce_parse
from pipeline.bounces.hooks import classify_bounce_message
from pipeline.cli.bounce import app
from pipeline.observe.metrics import REGISTRY
from pipeline.plugin_host.hookspecs import PROJECT, hookimpl

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
SNAPSHOT: dict[str, dict] = json.loads((FIXTURES / "expected.json").read_text())
NAMES = sorted(SNAPSHOT)
CONTRACT_KEYS = ["is_bounce", "kind", "reason", "status", "recipients", "original_message_id"]
RECIPIENT_KEYS = ["address", "kind", "reason", "status", "smtp_reply"]


def comparable(report: dict) -> dict:
    """The snapshot's view of a report: smtp_reply is free text and not compared."""
    return {
        **{k: report[k] for k in ("is_bounce", "kind", "reason", "status", "original_message_id")},
        "recipients": [{k: r[k] for k in ("address", "kind", "reason", "status")} for r in report["recipients"]],
    }


def test_the_snapshot_fixtures_are_broad() -> None:
    formats = {name.split("/")[0] for name in NAMES}
    assert len(NAMES) >= 80 and len(formats) >= 18


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_fixture_answer_is_unchanged(name: str) -> None:
    got = to_json_dict(parse_bounce((FIXTURES / name).read_bytes()))
    assert comparable(got) == SNAPSHOT[name]


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_fixture_with_crlf_line_endings_gives_the_same_answer(name: str) -> None:
    raw = (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert comparable(to_json_dict(parse_bounce(raw))) == SNAPSHOT[name]


@pytest.mark.parametrize("name", NAMES[:20])
def test_str_and_message_inputs_match_bytes(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    from_bytes = to_json_dict(parse_bounce(raw))
    assert to_json_dict(parse_bounce(message_from_bytes(raw))) == from_bytes
    if raw.isascii():
        assert to_json_dict(parse_bounce(raw.decode("ascii"))) == from_bytes


def test_every_recipient_has_a_reply_text_when_the_mail_gives_one() -> None:
    report = parse_bounce((FIXTURES / "postfix/user-unknown.eml").read_bytes())
    assert report.recipients[0].smtp_reply and "User unknown" in report.recipients[0].smtp_reply


def test_reputation_blocks_are_soft_and_unknown_users_hard() -> None:
    blocked = parse_bounce((FIXTURES / "postfix/spamhaus-block.eml").read_bytes())
    unknown = parse_bounce((FIXTURES / "postfix/user-unknown.eml").read_bytes())
    assert (blocked.kind, blocked.reason) == ("soft", "blocked")
    assert (unknown.kind, unknown.reason) == ("hard", "user_unknown")


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("autoreply/out-of-office-outlook.eml", BounceCategory.AUTOREPLY),
        ("arf/abuse-report.eml", BounceCategory.FEEDBACK),
        ("delivered/success-dsn.eml", BounceCategory.DELIVERED),
        ("ordinary/reply-from-lead.eml", BounceCategory.UNKNOWN),
        ("postfix/user-unknown.eml", BounceCategory.BOUNCE),
    ],
)
def test_category_tells_bounces_from_other_automatic_mail(name: str, category: BounceCategory) -> None:
    assert parse_bounce((FIXTURES / name).read_bytes()).category == category


# ---------------------------------------------------------------- robustness


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(data: bytes) -> None:
    report = parse_bounce(data)
    assert isinstance(report, BounceReport) and not report.internal_error


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3000))
def test_random_text_never_raises(text: str) -> None:
    report = parse_bounce(text)
    assert isinstance(report, BounceReport) and not report.internal_error


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), cut=st.floats(min_value=0.0, max_value=1.0))
def test_truncated_fixtures_never_raise(name: str, cut: float) -> None:
    raw = (FIXTURES / name).read_bytes()
    report = parse_bounce(raw[: int(len(raw) * cut)])
    assert isinstance(report, BounceReport) and not report.internal_error


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES), seed=st.integers(min_value=0, max_value=2**32 - 1), flips=st.integers(min_value=1, max_value=40)
)
def test_mutated_fixtures_never_raise(name: str, seed: int, flips: int) -> None:
    raw = bytearray((FIXTURES / name).read_bytes())
    rng = random.Random(seed)
    for _ in range(flips):
        position = rng.randrange(len(raw))
        raw[position] = rng.choice(b"\x00\xff\r\n:;<>@=-\"' \tZz9")
    report = parse_bounce(bytes(raw))
    assert set(to_json_dict(report)) == set(CONTRACT_KEYS)
    assert not report.internal_error


def test_hostile_structures_do_not_raise() -> None:
    deep = b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--a\nContent-Type: message/rfc822\n\n" * 200
    huge_header = b"Subject: " + b"x" * 200_000 + b"\n\nbody"
    for raw in (deep, huge_header, b"", b"\n\n\n", b"From: \x00\n", "Subject: \ud800\n\nx"):
        report = parse_bounce(raw)
        assert isinstance(report, BounceReport) and not report.internal_error


def test_a_parser_bug_is_flagged_logged_and_counted_not_passed_off_as_ordinary_mail(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> BounceReport:
        raise RuntimeError("parser bug")

    before = REGISTRY.get_sample_value("mailpipe_bounce_parse_internal_errors_total", {"parser": "bounce"}) or 0.0
    monkeypatch.setattr(bounce_parse, "_parse", broken)
    with caplog.at_level(logging.ERROR, logger="pipeline.bounces.parse"):
        report = parse_bounce((FIXTURES / "postfix/user-unknown.eml").read_bytes())
    assert report.internal_error and not report.is_bounce
    assert REGISTRY.get_sample_value("mailpipe_bounce_parse_internal_errors_total", {"parser": "bounce"}) == before + 1
    assert any(r.message == "bounce_parse_internal_error" and r.exc_info for r in caplog.records)


def test_the_cli_warns_when_the_parser_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> BounceReport:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(bounce_parse, "_parse", broken)
    result = CliRunner().invoke(app, ["classify", str(FIXTURES / "postfix/user-unknown.eml"), "--json"])
    assert result.exit_code == 0 and "internal error" in result.stderr


# ---------------------------------------------------------------- hooks


def test_hook_chain_prefers_a_plugin_and_falls_back_to_the_core_parser() -> None:
    from pipeline.bounces import hooks
    from pipeline.plugin_host import hookspecs

    class Plugin:
        @hookimpl
        def mailpipe_parse_bounce(self, message):
            if "special" in str(message.get("subject", "")):
                return BounceReport(is_bounce=True, reason="filtered")
            return None

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(hooks)
    pm.register(Plugin())
    special = classify_bounce_message(b"Subject: special\n\nhi", pm)
    ordinary = classify_bounce_message((FIXTURES / "qmail/no-mailbox.eml").read_bytes(), pm)
    assert special.reason == "filtered"
    assert ordinary.reason == "user_unknown" and ordinary.is_bounce
    assert classify_bounce_message((FIXTURES / "qmail/no-mailbox.eml").read_bytes()).reason == "user_unknown"


# ---------------------------------------------------------------- CLI contract


def test_cli_json_prints_exactly_the_contract() -> None:
    result = CliRunner().invoke(app, ["classify", str(FIXTURES / "exim/two-recipients-rbl.eml"), "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert list(payload) == CONTRACT_KEYS
    assert all(list(r) == RECIPIENT_KEYS for r in payload["recipients"])
    assert payload["kind"] in ("hard", "soft", "not_bounce")
    assert [r["address"] for r in payload["recipients"]] == ["alpha@example.net", "beta@example.org"]


def test_cli_reads_standard_input() -> None:
    raw = (FIXTURES / "postfix/user-unknown.eml").read_bytes()
    result = CliRunner().invoke(app, ["classify", "-", "--json"], input=raw)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "5.1.1"


def test_cli_exits_zero_for_mail_that_is_not_a_bounce() -> None:
    result = CliRunner().invoke(app, ["classify", str(FIXTURES / "ordinary/reply-from-lead.eml"), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["is_bounce"] is False


def test_cli_exits_two_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["classify", str(tmp_path / "missing.eml"), "--json"])
    assert result.exit_code == 2 and result.stdout == ""


def test_cli_summary_without_json_names_the_reason() -> None:
    result = CliRunner().invoke(app, ["classify", str(FIXTURES / "postfix/mailbox-full.eml")])
    assert result.exit_code == 0 and "mailbox_full" in result.stdout
