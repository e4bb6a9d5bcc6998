"""Score the bounce parser against a hand-labelled corpus (issue #20's six metrics).

    python -m pipeline.bench.bounce_score [CORPUS_DIR] [--misses] [--json]

The corpus directory holds `.eml` files and `labels.json`, written by reading each mail, never
from parser output. Each label says whether the mail is a bounce and, per recipient, the address
and — for bounces — hard/soft, a coarse reason and the enhanced status code the mail carries.

A recipient the parser did not find counts as wrong in the per-recipient metrics too, so a
miss is never hidden behind a good hard/soft ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.bounces import BounceReport, parse_bounce

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "bounce_corpus"

# The §3 reasons folded into the six coarse classes the issue scores.
COARSE_REASONS: dict[str, tuple[str, ...]] = {
    "invalid_recipient": ("user_unknown", "host_unknown", "has_moved", "not_accept"),
    "mailbox_full": ("mailbox_full",),
    "too_large": ("mesg_too_big", "exceed_limit"),
    "disabled": ("suspend",),
    "blocked": (
        "blocked",
        "bad_reputation",
        "require_ptr",
        "spam_detected",
        "virus_detected",
        "content_error",
        "filtered",
        "rejected",
        "policy_violation",
        "auth_failure",
        "security_error",
        "failed_starttls",
        "not_compliant_rfc",
        "no_relaying",
    ),
    "transient": (
        "network_error",
        "system_error",
        "system_full",
        "mailer_error",
        "expired",
        "on_hold",
        "undefined",
        "syntax_error",
        "too_many_conn",
        "speeding",
        "rate_limited",
    ),
}
COARSE_OF: dict[str, str] = {reason: coarse for coarse, reasons in COARSE_REASONS.items() for reason in reasons}

TARGETS: dict[str, float] = {
    "recipient_recall": 0.97,
    "recipient_precision": 0.99,
    "bounce_vs_not_bounce": 0.99,
    "hard_soft": 0.96,
    "reason_coarse": 0.94,
    "status_code": 0.97,
}


def coarse_reason(reason: str) -> str:
    return COARSE_OF.get(reason, "transient")


@dataclass
class Ratio:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    @property
    def value(self) -> float:
        return self.right / self.total if self.total else 1.0


@dataclass
class Scores:
    mails: int = 0
    recall: Ratio = field(default_factory=Ratio)
    precision: Ratio = field(default_factory=Ratio)
    bounce: Ratio = field(default_factory=Ratio)
    hard_soft: Ratio = field(default_factory=Ratio)
    reason: Ratio = field(default_factory=Ratio)
    status: Ratio = field(default_factory=Ratio)
    misses: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return {
            "recipient_recall": self.recall.value,
            "recipient_precision": self.precision.value,
            "bounce_vs_not_bounce": self.bounce.value,
            "hard_soft": self.hard_soft.value,
            "reason_coarse": self.reason.value,
            "status_code": self.status.value,
        }

    def below_target(self) -> dict[str, float]:
        return {name: value for name, value in self.metrics().items() if value < TARGETS[name]}


def load_labels(corpus: Path) -> dict[str, dict[str, Any]]:
    labels: dict[str, dict[str, Any]] = json.loads((corpus / "labels.json").read_text())
    return labels


def score_corpus(corpus: Path = DEFAULT_CORPUS) -> Scores:
    scores = Scores()
    for name, label in load_labels(corpus).items():
        report = parse_bounce((corpus / name).read_bytes())
        _score_mail(scores, name, label, report)
    return scores


def _score_mail(scores: Scores, name: str, label: dict[str, Any], report: BounceReport) -> None:
    scores.mails += 1
    if report.internal_error:
        scores.internal_errors.append(name)
    scores.bounce.add(report.is_bounce == label["bounce"])
    if report.is_bounce != label["bounce"]:
        scores.misses.append(f"{name}: is_bounce {report.is_bounce}, labelled {label['bounce']}")
    found = {r.address.lower(): r for r in report.recipients}
    wanted = {r["address"].lower(): r for r in label["recipients"]}
    for address in found:
        scores.precision.add(address in wanted)
        if address not in wanted:
            scores.misses.append(f"{name}: unexpected recipient {address}")
    for address, want in wanted.items():
        got = found.get(address)
        scores.recall.add(got is not None)
        if got is None:
            scores.misses.append(f"{name}: missed recipient {address}")
        if not label["bounce"]:
            continue
        kind = str(got.kind) if got else None
        coarse = coarse_reason(got.reason) if got else None
        scores.hard_soft.add(kind == want["kind"])
        scores.reason.add(coarse == want["reason"])
        if kind != want["kind"] or coarse != want["reason"]:
            got_text = f"{kind}/{got.reason}" if got else "missing"
            scores.misses.append(f"{name}: {address} got {got_text}, labelled {want['kind']}/{want['reason']}")
        if want.get("status"):
            status = got.status if got else None
            scores.status.add(status == want["status"])
            if status != want["status"]:
                scores.misses.append(f"{name}: {address} status {status}, labelled {want['status']}")


def render(scores: Scores) -> str:
    ratios = {
        "recipient_recall": scores.recall,
        "recipient_precision": scores.precision,
        "bounce_vs_not_bounce": scores.bounce,
        "hard_soft": scores.hard_soft,
        "reason_coarse": scores.reason,
        "status_code": scores.status,
    }
    lines = [f"{scores.mails} mails"]
    for name, ratio in ratios.items():
        mark = "ok " if ratio.value >= TARGETS[name] else "LOW"
        lines.append(f"{mark} {name:<22} {ratio.value:.3f}  ({ratio.right}/{ratio.total}, target {TARGETS[name]:.2f})")
    if scores.internal_errors:
        lines.append(f"internal errors: {len(scores.internal_errors)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--misses", action="store_true", help="list every wrong answer")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args(argv)
    scores = score_corpus(args.corpus)
    if args.json:
        print(json.dumps({"mails": scores.mails, **scores.metrics()}, indent=1))
    else:
        print(render(scores))
    if args.misses:
        print("\n".join(scores.misses))
    return 0 if not scores.below_target() else 1


if __name__ == "__main__":
    sys.exit(main())
