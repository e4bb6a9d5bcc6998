"""Four worker processes, one account, a short-lived token: one refresh per expiry at the token endpoint.

Each process opens a fresh SMTP connection every few milliseconds (so every login needs a token) and
sends one message over it, for longer than the token's cache life; all start at the same instant
with an empty cache, so all four need a token at once at the start and again when it expires.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fake_provider import FakeProvider
from xoauth2_smtp import XOAuth2SMTP

from pipeline.config import load_config, resolve_account
from pipeline.oauth.cache import refresh_margin
from pipeline.oauth.tokens import TokenSource
from pipeline.plugin_host.manager import get_plugin_manager, preset_for
from pipeline.smtp.pool import AccountPool

pytestmark = pytest.mark.slow
LIFETIME = 4.0
PROCESSES = 4
MESSAGE = b"From: owner@mailbox.example\r\nTo: lead@receiver.example\r\nSubject: hi\r\n\r\nHello.\r\n"


def _worker(config_path: str, redis_url: str, ready: Any, run_for: float, results: Any) -> None:
    account = load_config(Path(config_path)).account("google-a")
    resolved = resolve_account(account, preset_for(account, get_plugin_manager()))

    async def run() -> list[int | None]:
        client = aioredis.Redis.from_url(redis_url)
        tokens = TokenSource(client)
        codes: list[int | None] = []
        ready.wait()  # every process loaded and connected: all start needing a token at the same moment
        start_at = time.time()
        while time.time() < start_at + run_for:
            pool = AccountPool(resolved, tokens=tokens)  # a new pool: a new connection and a new login each time
            reply = await pool.send("owner@mailbox.example", "lead@receiver.example", MESSAGE)
            await pool.close()
            codes.append(reply.code)
            await asyncio.sleep(0.02)
        await client.aclose()
        return codes

    results.put(asyncio.run(run()))


def test_four_processes_share_one_refresh_per_token_expiry(
    write_oauth_config: Callable[..., Path],
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    redis_url: str,
    record_property: Callable[[str, object], None],
) -> None:
    provider.lifetime = LIFETIME
    path = write_oauth_config()
    cache_life = LIFETIME - refresh_margin(LIFETIME)  # 3.2 s: a second refresh falls inside the run, a third does not
    run_for = cache_life * 1.6
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    ready = spawn.Barrier(PROCESSES)
    workers = [spawn.Process(target=_worker, args=(str(path), redis_url, ready, run_for, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    codes = [code for _ in workers for code in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)

    print(f"{PROCESSES} processes, {len(codes)} logins over {run_for:.1f}s, {provider.refreshes} refreshes")
    record_property("logins", xoauth2_smtp.accepted_logins)
    record_property("refreshes", provider.refreshes)
    assert provider.refreshes == 2, f"{provider.refreshes} refreshes for {len(codes)} logins in {PROCESSES} processes"
    assert codes and set(codes) == {250}
    assert xoauth2_smtp.rejected_logins == 0 and xoauth2_smtp.accepted_logins == len(codes)
