"""The CLI as users run it: submit a JSONL file, read an event's log, run the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.state.status import StatusStore


def test_submit_reports_bad_lines_by_number_and_still_submits_the_good_ones(
    config: object, write_config, tmp_path: Path, redis_client: redis.Redis
) -> None:
    path = write_config()
    leads = tmp_path / "leads.jsonl"
    lines = [
        json.dumps({"event_id": "l1", "to": "a@receiver.example", "template": "hello"}),
        "{not json",
        "",
        json.dumps({"event_id": "l2", "to": "bad address", "template": "hello"}),
        json.dumps({"event_id": "l3", "to": "c@receiver.example", "template": "hello"}),
    ]
    leads.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["submit", str(leads), "--config", str(path)])
    assert result.exit_code == 1
    assert "accepted 2, duplicates 0, refused 2" in result.stdout
    status = StatusStore(redis_client)
    assert status.get("default", "l1") is not None and status.get("default", "l3") is not None
    assert status.get("default", "l2") is None
    assert redis_client.llen("mailpipe:default:refused") == 2


def test_log_shows_the_history_of_an_event(config: object, write_config, redis_client: redis.Redis) -> None:
    from pipeline.config import Config
    from pipeline.submit import Submitter

    assert isinstance(config, Config)
    Submitter(config).submit([{"event_id": "logged", "to": "a@receiver.example", "template": "hello"}])
    result = CliRunner().invoke(app, ["log", "logged", "--json", "--config", str(write_config())])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["state"] == "accepted" and data["history"][0]["stage"] == "submit"
    missing = CliRunner().invoke(app, ["log", "nope", "--config", str(write_config())])
    assert missing.exit_code == 1


def test_the_demo_runs_the_main_job_and_reports_every_outcome(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MAILPIPE_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "demo", "--out", str(tmp_path / "demo"), "--events", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env | {"COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in ("denmark", "cold-outreach", "default", "suppressed", "rejected", "bounced", "all 33 accepted events final"):
        assert expected in out
    assert "refused event demo-bad-address" in out
    maildir = tmp_path / "demo" / "maildir" / "new"
    assert len(list(maildir.iterdir())) == 30
