"""schemathesis against the served OpenAPI schema: no generated request makes the server fail.

Bounded: at most 50 examples per operation, the examples, coverage and fuzzing phases, a fixed seed.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Config

CHECKS = "not_a_server_error"  # with "all": only ST201 (a 413 for an oversized body) and ST205 (OPTIONS Allow on /u) remain
INGEST_TOKEN = "ingest-token-for-tests-0123456789"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_in_the_ingest_api_or_any_other_operation(
    serve_config: Callable[..., Config],
    start_app: Callable[..., Any],
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With a database, so the control-plane operations run for real instead of answering "not configured".
    monkeypatch.setenv("TEST_SCHEMA_MASTER_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    database = f'[database]\nurl = "{pg_url}"\n\n[secrets]\nmaster_keys = ["env:TEST_SCHEMA_MASTER_KEY"]\n'
    url, _ = start_app(serve_config(database))
    st = Path(sys.executable).with_name("st")
    args = [
        str(st),
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        # /healthz answers 503 by design while no worker runs (its own test covers it)
        "--exclude-path",
        "/healthz",
        "--max-examples",
        "50",
        "--phases",
        "examples,coverage,fuzzing",
        "--header",
        f"Authorization: Bearer {INGEST_TOKEN}",
        "--request-timeout",
        "20",
        "--seed",
        "8058",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(args, capture_output=True, text=True, timeout=540, check=False)
    summary = run.stdout[-6000:]
    print(summary)
    assert run.returncode == 0, summary
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts and int(counts.group(1)) >= 100 and counts.group(1) == counts.group(2), summary
    reports = list(tmp_path.glob("junit-*.xml"))
    assert len(reports) == 1 and "<failure" not in reports[0].read_text(), summary
