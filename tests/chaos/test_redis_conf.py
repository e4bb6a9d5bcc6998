"""The Redis configuration shipped in ops/ really starts Redis with AOF fsynced every second."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from pipeline.smtp.netutil import free_port

pytestmark = pytest.mark.chaos
CONF = Path(__file__).resolve().parents[2] / "ops" / "redis" / "redis.conf"


def test_the_shipped_redis_conf_enables_aof_everysec_and_never_evicts(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            str(CONF),
            "--port",
            str(port),
            "--dir",
            str(tmp_path),
            "--bind",
            "127.0.0.1",
            "--logfile",
            str(tmp_path / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, (tmp_path / "redis.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        settings = {k: client.config_get(k)[k] for k in ("appendonly", "appendfsync", "maxmemory-policy", "aof-load-truncated")}
        expected = {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction", "aof-load-truncated": "yes"}
        assert settings == expected
        client.set("probe", "1")
        assert (tmp_path / "appendonlydir").is_dir()
    finally:
        process.terminate()
        process.wait(timeout=10)
