"""The blind bounce corpus: written from public samples of real MTAs' bounces before the parser
was read, labelled by hand (§3 taxonomy). Same manifest format as tests/fixtures/bounces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.bounces import parse_bounce, to_json_dict

BLIND = Path(__file__).parent / "fixtures" / "bounces_blind"
EXPECTED: dict[str, dict] = json.loads((BLIND / "expected.json").read_text())
NAMES = sorted(EXPECTED)


def comparable(report: dict) -> dict:
    """The manifest's view of a report: smtp_reply is free text and not compared."""
    return {
        **{k: report[k] for k in ("is_bounce", "kind", "reason", "status", "original_message_id")},
        "recipients": [{k: r[k] for k in ("address", "kind", "reason", "status")} for r in report["recipients"]],
    }


def test_the_blind_corpus_spans_many_mtas() -> None:
    formats = {name.split("/")[0] for name in NAMES}
    assert len(NAMES) >= 80 and len(formats) >= 40


def test_the_blind_corpus_labels_follow_the_hard_soft_rule() -> None:
    hard = {"user_unknown", "host_unknown", "has_moved"}
    for name, want in EXPECTED.items():
        for rcpt in want["recipients"]:
            if rcpt["reason"] in ("vacation", "feedback", "delivered"):
                expected_kind = "not_bounce"
            elif rcpt["reason"] in hard or (rcpt["reason"] == "not_accept" and (rcpt["status"] or "5")[0] == "5"):
                expected_kind = "hard"
            else:
                expected_kind = "soft"
            assert rcpt["kind"] == expected_kind, name


@pytest.mark.parametrize("name", NAMES)
def test_blind_fixture_is_classified_as_labelled(name: str) -> None:
    got = to_json_dict(parse_bounce((BLIND / name).read_bytes()))
    assert comparable(got) == EXPECTED[name]


@pytest.mark.parametrize("name", NAMES)
def test_blind_fixture_with_crlf_line_endings_gives_the_same_answer(name: str) -> None:
    raw = (BLIND / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert comparable(to_json_dict(parse_bounce(raw))) == EXPECTED[name]
