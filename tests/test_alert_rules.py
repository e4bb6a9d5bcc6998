"""ops/: alert rules pass promtool and their unit tests; dashboard and rules name only real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.observe.exposition import defined_metric_names

OPS = Path(__file__).resolve().parent.parent / "ops"
RULES = OPS / "prometheus" / "alerts.yml"
RULE_TESTS = OPS / "prometheus" / "alerts_test.yml"
SCRAPE = OPS / "prometheus" / "prometheus.yml"
DASHBOARD = OPS / "grafana" / "mailpipe-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (ops/bootstrap.sh installs it)")
METRIC = re.compile(r"\bmailpipe_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def referenced_metrics(text: str) -> set[str]:
    names = set()
    for name in METRIC.findall(text):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in defined_metric_names():
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


@needs_promtool
def test_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES), cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


@needs_promtool
def test_every_alert_fires_on_its_input_series_and_not_on_its_neighbours() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_scrape_config_is_valid_and_loads_the_rules() -> None:
    result = promtool("check", "config", SCRAPE.name, cwd=SCRAPE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_test_that_expects_it_to_fire() -> None:
    alerts = re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.MULTILINE)
    tested = RULE_TESTS.read_text()
    assert len(alerts) == 9
    for alert in alerts:
        block = re.findall(rf"alertname: {alert}\n\s+exp_alerts:\n\s+- exp_labels", tested)
        assert block, f"{alert} has no test expecting it to fire"


def test_the_issue_asks_for_these_alerts() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.MULTILINE))
    assert {
        "MailpipeQueueGrowing",
        "MailpipeOldestMessageTooOld",
        "MailpipeBounceRateHigh",
        "MailpipeAccountAuthFailed",
        "MailpipeThrottlingSustained",
        "MailpipeNoSendsWhileQueued",
        "MailpipeWorkerGone",
    } <= alerts


def test_the_dashboard_uses_only_metric_names_the_code_defines() -> None:
    used = set().union(*(referenced_metrics(e) for e in dashboard_exprs()))
    assert len(used) >= 20
    assert used <= defined_metric_names(), sorted(used - defined_metric_names())


def test_the_alert_rules_use_only_metric_names_the_code_defines() -> None:
    used = referenced_metrics(RULES.read_text())
    assert used and used <= defined_metric_names(), sorted(used - defined_metric_names())


def test_the_dashboard_shows_what_ops_asked_for() -> None:
    titles = [p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    for wanted in (
        "Throughput by outcome",
        "Queue depth",
        "Daily usage vs cap",
        "Throttles and account signals",
        "Bounce rate by reason",
        "Account health",
        "Stage batch duration p50 / p95",
    ):
        assert wanted in titles


def test_a_misspelt_metric_in_a_dashboard_would_be_caught() -> None:
    assert not referenced_metrics("rate(mailpipe_send_atempts_total[5m])") <= defined_metric_names()
