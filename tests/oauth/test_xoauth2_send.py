"""XOAUTH2 sending through the account pool: real SMTP (aiosmtpd), real Redis, the fake provider's token endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import redis
import redis.asyncio as aioredis
from fake_provider import FakeProvider
from xoauth2_smtp import XOAuth2SMTP

from pipeline.config import load_config, resolve_account
from pipeline.config.resolve import ResolvedAccount
from pipeline.models import TransportError
from pipeline.oauth.errors import RECONNECT_HINT
from pipeline.oauth.tokens import TokenSource
from pipeline.plugin_host.manager import get_plugin_manager, preset_for
from pipeline.smtp.pool import AccountPool
from pipeline.smtp.verify import verify_account
from pipeline.state import keys

MESSAGE = b"From: owner@mailbox.example\r\nTo: lead@receiver.example\r\nSubject: hi\r\n\r\nHello.\r\n"


def google_a(path: Path) -> ResolvedAccount:
    account = load_config(path).account("google-a")
    return resolve_account(account, preset_for(account, get_plugin_manager()))


async def send_once(account: ResolvedAccount, redis_url: str, **source: float) -> tuple[object, TokenSource]:
    client = aioredis.Redis.from_url(redis_url)
    tokens = TokenSource(client, **source)
    pool = AccountPool(account, tokens=tokens)
    try:
        reply = await pool.send("owner@mailbox.example", "lead@receiver.example", MESSAGE)
    finally:
        await pool.close()
        await client.aclose()
    return reply, tokens


def test_a_fresh_token_logs_in_with_xoauth2_and_the_message_is_accepted(
    write_oauth_config: Callable[..., Path],
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    reply, _ = asyncio.run(send_once(google_a(write_oauth_config()), redis_url))

    assert getattr(reply, "code", None) == 250, reply
    assert [r.user for r in xoauth2_smtp.received] == ["owner@mailbox.example"]
    assert provider.refreshes == 1
    cached = redis_client.get("mailpipe:default:oauth:google-a:token")
    assert cached is not None and b"at-" not in cached  # stored encrypted, never the token itself


def test_a_cached_token_is_reused_by_the_next_connection_without_a_refresh(
    write_oauth_config: Callable[..., Path], provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, redis_url: str
) -> None:
    account = google_a(write_oauth_config())
    for _ in range(3):
        reply, _ = asyncio.run(send_once(account, redis_url))
        assert getattr(reply, "code", None) == 250

    assert provider.refreshes == 1 and xoauth2_smtp.accepted_logins == 3


def test_a_token_the_server_calls_expired_gets_one_refresh_and_one_retry(
    write_oauth_config: Callable[..., Path], provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, redis_url: str
) -> None:
    account = google_a(write_oauth_config())
    asyncio.run(send_once(account, redis_url))
    provider.expire_all()  # the provider expired it early: our cache still thinks it is good

    reply, _ = asyncio.run(send_once(account, redis_url))

    assert getattr(reply, "code", None) == 250
    assert provider.refreshes == 2
    assert xoauth2_smtp.rejected_logins == 1 and xoauth2_smtp.accepted_logins == 2


def test_a_revoked_grant_pauses_the_account_and_puts_reconnect_needed_on_the_events_stream(
    write_oauth_config: Callable[..., Path],
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    redis_url: str,
    redis_client: redis.Redis,
    oauth_env: str,
) -> None:
    provider.revoke(oauth_env)
    account = google_a(write_oauth_config())

    reply, _ = asyncio.run(send_once(account, redis_url))
    again, _ = asyncio.run(send_once(account, redis_url))

    assert getattr(reply, "error", None) == TransportError.AUTH
    assert "invalid_grant" in reply.text and RECONNECT_HINT in reply.text  # type: ignore[attr-defined]
    assert getattr(again, "error", None) == TransportError.AUTH
    assert provider.refreshes == 1  # the refusal is remembered: no second call with a revoked grant
    state = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.account_state("default", "google-a")).items()}
    assert state["health"] == "auth_failed" and state["paused"] == "1" and RECONNECT_HINT in state["reason"]
    events = [fields for _, fields in redis_client.xrange(keys.events_stream("default"))]
    reconnect = [f for f in events if f.get(b"type") == b"account.reconnect_needed"]
    assert len(reconnect) == 1
    entry = json.loads(reconnect[0][b"entry"])
    assert entry["account"] == "google-a" and entry["hint"] == RECONNECT_HINT and entry["reason"] == "oauth_revoked"
    assert not xoauth2_smtp.received


def test_a_token_endpoint_that_is_down_is_retried_with_back_off_and_does_not_pause(
    write_oauth_config: Callable[..., Path],
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    provider.down = True
    account = google_a(write_oauth_config())

    reply, _ = asyncio.run(send_once(account, redis_url, attempts=3, backoff=0.05))

    assert getattr(reply, "error", None) == TransportError.CONNECT  # transient: classify defers it, no pause
    assert provider.refreshes == 0  # 503 before the grant is even looked at
    assert not redis_client.exists(keys.account_state("default", "google-a"))
    provider.down = False
    redis_client.delete(*redis_client.keys("mailpipe:default:oauth:google-a:failed:*"))
    reply, _ = asyncio.run(send_once(account, redis_url))
    assert getattr(reply, "code", None) == 250


def test_a_slow_token_endpoint_times_out_as_a_transient_error(
    write_oauth_config: Callable[..., Path], provider: FakeProvider, redis_url: str, redis_client: redis.Redis
) -> None:
    provider.delay = 1.5
    account = google_a(write_oauth_config())

    reply, _ = asyncio.run(send_once(account, redis_url, attempts=2, backoff=0.05, timeout=0.3))

    assert getattr(reply, "error", None) == TransportError.CONNECT
    assert "timed out" in reply.text  # type: ignore[attr-defined]
    assert not redis_client.exists(keys.account_state("default", "google-a"))


def test_accounts_verify_logs_in_with_xoauth2(
    write_oauth_config: Callable[..., Path], provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP
) -> None:
    report = asyncio.run(verify_account(load_config(write_oauth_config()).account("google-a")))

    assert report.ok, report.steps
    assert "XOAUTH2 as owner@mailbox.example" in report.steps[-1].detail


def test_accounts_verify_of_a_revoked_grant_fails_at_auth_with_the_reconnect_hint(
    write_oauth_config: Callable[..., Path], provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, oauth_env: str
) -> None:
    provider.revoke(oauth_env)
    report = asyncio.run(verify_account(load_config(write_oauth_config()).account("google-a")))

    assert report.failure is not None and report.failure.step == "auth"
    assert "invalid_grant" in report.failure.detail
    assert any(RECONNECT_HINT in h for h in report.hints)
