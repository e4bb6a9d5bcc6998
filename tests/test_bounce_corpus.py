"""The hand-labelled bounce corpus (tests/fixtures/bounce_corpus): the parser meets issue #20's
targets on it, and the labels themselves follow the §3 hard/soft rule."""

from __future__ import annotations

from pipeline.bench.bounce_score import COARSE_REASONS, DEFAULT_CORPUS, TARGETS, load_labels, score_corpus

LABELS = load_labels(DEFAULT_CORPUS)


def test_the_corpus_spans_the_families_the_issue_names() -> None:
    families = {name.split("/")[0] for name in LABELS}
    wanted = {
        "postfix",
        "exim",
        "sendmail",
        "qmail",
        "exchange",
        "gmail",
        "yahoo",
        "dma",
        "domino",
        "courier",
        "ses",
        "arf",
        "kddi",
        "verizon",
        "zoho",
        "orange",
        "autoreply",
        "ordinary",
    }
    assert len(LABELS) >= 120 and wanted <= families


def test_every_label_follows_the_hard_soft_rule() -> None:
    for name, label in LABELS.items():
        assert all((DEFAULT_CORPUS / name).is_file() for name in LABELS)
        for rcpt in label["recipients"] if label["bounce"] else ():
            assert rcpt["reason"] in COARSE_REASONS, name
            permanent = (rcpt["status"] or "5")[0] == "5"
            should_be_hard = rcpt["reason"] == "invalid_recipient" and permanent
            assert (rcpt["kind"] == "hard") == should_be_hard, name


def test_the_parser_meets_the_issue_targets_on_the_corpus() -> None:
    scores = score_corpus(DEFAULT_CORPUS)
    assert scores.mails == len(LABELS)
    assert scores.below_target() == {}, "\n".join(scores.misses)
    assert set(scores.metrics()) == set(TARGETS)


def test_no_corpus_mail_trips_an_internal_error() -> None:
    assert score_corpus(DEFAULT_CORPUS).internal_errors == []
