"""Fixtures the chaos scenarios share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.state.localredis import LocalRedis


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    directory = tmp_path / "aof-redis"
    directory.mkdir()
    server = LocalRedis(directory, appendonly=True).start()
    yield server
    server.stop()
