"""Secrets never reach logs, Redis (status history, stream, dead letters), exceptions or repr."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.context import build_context
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

WRONG = "wrong-secret-for-alpha-7731"


def redis_blob(client: redis.Redis) -> bytes:
    parts: list[bytes] = []
    for key in client.scan_iter(count=5000):
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"hash":
            parts += [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            parts += [b"".join(k + v for k, v in fields.items()) for _, fields in client.xrange(key)]
    return b"\n".join(parts)


def test_an_auth_failure_run_at_debug_level_leaks_no_password_anywhere(
    tmp_path: Path,
    redis_url: str,
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = {**SMTP_USERS, "alpha": WRONG}
    for user, password in secrets.items():
        monkeypatch.setenv(f"TEST_PW_{user.upper()}", password)
    port = smtp_server.ports["starttls"]
    path = tmp_path / "mailpipe.toml"
    path.write_text(f"""
[broker]
url = "{redis_url}"
[retry]
base_delay = 0.2
max_delay = 1
[templates]
dir = "."
{account_toml("alpha", port, tls_files.ca_file)}{account_toml("beta", port, tls_files.ca_file)}
[[routes]]
match = {{ list = "both" }}
accounts = ["alpha", "beta"]
strategy = "round_robin"
[default]
account = "beta"
""")
    config = load_config(path)
    env = {**{f"TEST_PW_{u.upper()}": p for u, p in secrets.items()}, "MAILPIPE_LOG_LEVEL": "DEBUG"}
    worker = WorkerProcess(path, processes=1, threads=4, env=env, log_path=tmp_path / "worker.log").start()
    ids = [f"s-{i}" for i in range(20)]
    try:
        events = [{"event_id": i, "to": f"{i}@receiver.example", "list": "both", "subject": "s", "text": "t"} for i in ids]
        Submitter(config).submit(events)
        status = StatusStore(redis_client)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and None in status.outcomes(ids).values():
            time.sleep(0.2)
        outcomes = status.outcomes(ids)
    finally:
        worker.stop()

    assert set(outcomes.values()) == {"sent"}
    assert smtp_server.auth_failures >= 1, "the wrong password was never tried: the test proves nothing"
    history = b"".join(str(status.get("default", i).history).encode() for i in ids)  # type: ignore[union-attr]
    assert b"rerouted" in history and b"535" in history
    logs = (tmp_path / "worker.log").read_bytes()
    assert b'"level": "debug"' in logs or b"DEBUG" in logs
    everything = logs + redis_blob(redis_client)
    for secret in secrets.values():
        assert secret.encode() not in everything


def test_config_objects_and_errors_never_show_a_password(
    tmp_path: Path, redis_url: str, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PW_ALPHA", WRONG)
    path = tmp_path / "mailpipe.toml"
    path.write_text(
        f'[broker]\nurl = "{redis_url}"\n{account_toml("alpha", 2525, tls_files.ca_file)}\n'
        '[[accounts]]\nname = "lit"\nhost = "h.example"\npassword = "literal-pw-5521"\nfrom_email = "a@b.example"\n'
        '[default]\naccount = "alpha"\n'
    )
    config = load_config(path)
    ctx = build_context(config)
    shown = " ".join(
        [
            repr(config),
            str(config),
            repr(ctx.resolved),
            str(ctx.resolved),
            repr(config.accounts),
            str(config.model_dump()),
            config.model_dump_json(),
        ]
    )
    assert WRONG not in shown and "literal-pw-5521" not in shown
