"""Under CI=true a skipped test fails the run; locally it stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SAMPLE = """
import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip("frobnicator is not installed")

@pytest.mark.skipif(True, reason="no promtool here")
def test_marked():
    pass

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False
"""


def run_sample(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only skip_policy (-p): importing every installed plugin costs seconds
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-p", "skip_policy", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def test_locally_a_skip_is_a_skip(tmp_path: Path) -> None:
    done = run_sample(tmp_path, ci=None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in done.stdout


def test_under_ci_every_skip_fails_and_names_what_was_missing(tmp_path: Path) -> None:
    done = run_sample(tmp_path, ci="true")
    assert done.returncode == 1, done.stdout
    # a skip in the call phase is reported as failed, one from a skipif marker (setup phase) as an error
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in done.stdout and "skipped" not in done.stdout.splitlines()[-1]
    assert "skipped under CI=true, which counts as a failure: frobnicator is not installed" in done.stdout
    assert "no promtool here" in done.stdout
