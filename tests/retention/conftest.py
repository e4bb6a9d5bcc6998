"""A config with a database and short retention windows, and helpers to feed the status layer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.config.load import load_config


@pytest.fixture
def retention_config(tmp_path: Path, redis_url: str, pg_url: str) -> Callable[..., Path]:
    def write(*, hot: int = 1, dedupe_window: int = 30, feedback_window: int = 1, extra: str = "") -> Path:
        path = tmp_path / "mailpipe.toml"
        path.write_text(
            f"""
[broker]
url = "{redis_url}"

[database]
url = "{pg_url}"

[retention]
hot = {hot}
dedupe_window = {dedupe_window}
feedback_window = {feedback_window}
{extra}

[[accounts]]
name = "main"
host = "127.0.0.1"
port = 2525
from_email = "sales@acme.example"

[default]
account = "main"
"""
        )
        return path

    return write


@pytest.fixture
def loaded(retention_config: Callable[..., Path]) -> Config:
    return load_config(retention_config())
