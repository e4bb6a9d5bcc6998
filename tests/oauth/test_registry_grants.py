"""What workers learn about a grant reaches PostgreSQL, and the connect flow can create the account it connects.

Real parts: PostgreSQL registry, Redis, the control API and CLI, the XOAUTH2 SMTP server, Dovecot with its oauth2
passdb; the fake provider rotates refresh tokens when asked (as Microsoft does) and refuses the old ones after.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from connect_testbed import MAILBOX, PLATFORM, Deployment
from eventually import eventually
from fake_provider import FakeProvider
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner
from xoauth2_smtp import XOAuth2SMTP

from pipeline.cli import app as cli_app
from pipeline.config import load_config, resolve_account
from pipeline.config.resolve import ResolvedAccount, ResolvedOAuth
from pipeline.control.crypto import Keyring
from pipeline.db.engine import make_engine
from pipeline.db.tables import AuditEntry, SmtpAccount, Tenant
from pipeline.oauth import endpoint
from pipeline.oauth.errors import RECONNECT_HINT, GrantRefused
from pipeline.oauth.tokens import TokenSource
from pipeline.plugin_host.manager import get_plugin_manager, preset_for
from pipeline.registry.grants import RegistryGrants
from pipeline.registry.snapshot import SendingAccount
from pipeline.registry.sources import DatabaseSource
from pipeline.smtp.pool import AccountPool

MESSAGE = b"From: owner@mailbox.example\r\nTo: lead@receiver.example\r\nSubject: hi\r\n\r\nHello.\r\n"


def source_of(deployment: Deployment) -> DatabaseSource:
    config = deployment.config
    return DatabaseSource(
        make_engine(config.database.resolved_url() or ""),
        Keyring.from_refs(config.secrets.master_keys),
        get_plugin_manager(),
        trusted_ca_file=config.serve.trusted_ca_file,
    )


def loaded(deployment: Deployment, tenant: str, name: str) -> SendingAccount:
    """The account as a worker loads it from the registry (a fresh snapshot)."""
    source = source_of(deployment)
    try:
        return source.load(tenant).accounts[name]
    finally:
        source.close()


def stored_refresh_token(deployment: Deployment, tenant: str, name: str) -> str:
    grant = loaded(deployment, tenant, name).resolved.oauth
    assert grant is not None
    return grant.refresh_token.get_secret_value()


def version(deployment: Deployment, tenant: str) -> int:
    with Session(make_engine(deployment.config.database.resolved_url() or "")) as session:
        return int(session.scalars(select(Tenant.version).where(Tenant.slug == tenant)).one())


async def send(account: ResolvedAccount, redis_url: str, keeper: RegistryGrants | None) -> object:
    """One message through a fresh pool (a new SMTP login) with the worker's token source."""
    client = aioredis.Redis.from_url(redis_url)
    pool = AccountPool(account, tokens=TokenSource(client, keeper=keeper))
    try:
        return await pool.send("owner@mailbox.example", "lead@receiver.example", MESSAGE)
    finally:
        await pool.close()
        await client.aclose()


def send_as_worker(deployment: Deployment, redis_url: str, tenant: str, name: str) -> object:
    source = source_of(deployment)
    try:
        account = source.load(tenant).accounts[name].resolved
        return asyncio.run(send(account, redis_url, RegistryGrants(source)))
    finally:
        source.close()


def refused_by_provider(grant: ResolvedOAuth) -> bool:
    try:
        asyncio.run(endpoint.refresh(grant))
    except GrantRefused as exc:
        return exc.revoked
    return False


def connected(deployment: Deployment, port: int) -> None:
    deployment.account("acme", "main", port)
    assert deployment.connect("acme", "main").headers["location"].endswith("result=connected&account=main")


# --- rotated refresh tokens ---------------------------------------------------------------------------------


def test_a_toml_accounts_rotated_refresh_token_is_kept_in_redis_encrypted_and_preferred(
    write_oauth_config: Callable[..., Path],
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    redis_url: str,
    redis_client: redis.Redis,
    oauth_env: str,
) -> None:
    provider.rotate = True
    config = load_config(write_oauth_config()).account("google-a")
    account = resolve_account(config, preset_for(config, get_plugin_manager()))

    assert getattr(asyncio.run(send(account, redis_url, None)), "code", None) == 250
    assert provider.rotations == 1
    assert refused_by_provider(account.oauth)  # type: ignore[arg-type]  # the configured token is dead now
    provider.refused_refresh_tokens.clear()
    (key,) = redis_client.keys("mailpipe:default:oauth:google-a:rotated:*")
    blob = redis_client.get(key)
    assert blob is not None and b"rt-" not in blob and 0 < redis_client.ttl(key) <= 90 * 86400

    provider.expire_all()  # the server ends the access token early: one refresh, from the rotated token
    assert getattr(asyncio.run(send(account, redis_url, None)), "code", None) == 250
    redis_client.delete("mailpipe:default:oauth:google-a:token")  # a cold cache, as after a restart
    assert getattr(asyncio.run(send(account, redis_url, None)), "code", None) == 250

    assert provider.refreshes - 1 == 3 and provider.rotations == 3  # less the test's own try of the dead token
    assert provider.refused_refresh_tokens == []  # never tried a dead token, the configured one included
    assert xoauth2_smtp.accepted_logins == 3


def test_a_registry_accounts_rotated_refresh_token_is_sealed_in_postgres_and_workers_reload_it(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, redis_url: str
) -> None:
    provider.rotate = True
    connected(deployment, xoauth2_smtp.port)  # the callback's SMTP check refreshed once: rotated already
    first = stored_refresh_token(deployment, "acme", "main")
    assert first in provider.refresh_tokens  # the stored token is the live one, not the one the code exchange gave
    before = version(deployment, "acme")

    reply = send_as_worker(deployment, redis_url, "acme", "main")

    assert getattr(reply, "code", None) == 250
    second = stored_refresh_token(deployment, "acme", "main")
    assert second != first and second in provider.refresh_tokens and first not in provider.refresh_tokens
    assert version(deployment, "acme") > before  # workers holding the snapshot reload it
    with Session(make_engine(deployment.config.database.resolved_url() or "")) as session:
        row = session.scalars(select(SmtpAccount).where(SmtpAccount.name == "main")).one()
        assert row.secret is not None and second.encode() not in row.secret  # sealed with the tenant's key
    shown = json.dumps(deployment.call("GET", "/v1/tenants/acme/accounts/main"))
    assert second not in shown and first not in shown

    provider.expire_all()
    assert getattr(send_as_worker(deployment, redis_url, "acme", "main"), "code", None) == 250
    assert provider.refused_refresh_tokens == []
    assert stored_refresh_token(deployment, "acme", "main") in provider.refresh_tokens


# --- a revoked grant in the API ---------------------------------------------------------------------------


def test_a_revoked_grant_marks_the_registry_account_auth_failed_until_it_is_connected_again(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, redis_url: str
) -> None:
    connected(deployment, xoauth2_smtp.port)
    assert deployment.call("GET", "/v1/tenants/acme/accounts/main")["status"] == "active"
    for token in list(provider.refresh_tokens):
        provider.revoke(token)
    before = version(deployment, "acme")

    reply = send_as_worker(deployment, redis_url, "acme", "main")

    assert RECONNECT_HINT in getattr(reply, "text", "")
    shown = deployment.call("GET", "/v1/tenants/acme/accounts/main")
    assert (shown["status"], shown["status_reason"], shown["status_hint"]) == ("auth_failed", "reconnect_needed", RECONNECT_HINT)
    assert version(deployment, "acme") > before  # NOTIFY + version: workers stop choosing it
    assert loaded(deployment, "acme", "main").usable is False
    with Session(make_engine(deployment.config.database.resolved_url() or "")) as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "account.auth_failed")).all()
        assert entry.actor == "system:oauth" and entry.after["status_reason"] == "reconnect_needed"
        assert "rt-" not in json.dumps(entry.after) and "rt-" not in json.dumps(entry.before)
    listed = CliRunner().invoke(cli_app, ["accounts", "status", "--tenant", "acme", "--json", "--config", str(deployment.path)])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["status"], row["status_reason"], row["status_hint"]) == ("auth_failed", "reconnect_needed", RECONNECT_HINT)
    wide = {"COLUMNS": "240"}
    table = CliRunner().invoke(cli_app, ["accounts", "list", "--tenant", "acme", "--config", str(deployment.path)], env=wide)
    assert table.exit_code == 0 and "auth_failed (reconnect_needed)" in table.stdout and RECONNECT_HINT in table.stdout

    assert deployment.connect("acme", "main").headers["location"].endswith("result=connected&account=main")
    shown = deployment.call("GET", "/v1/tenants/acme/accounts/main")
    assert (shown["status"], shown["status_reason"], shown["status_hint"]) == ("active", None, None)
    assert getattr(send_as_worker(deployment, redis_url, "acme", "main"), "code", None) == 250


# --- the connect flow creating the account -----------------------------------------------------------------


def start_new(deployment: Deployment, name: str, expect: int | None = None, **body: Any) -> Any:
    body = {"return_url": f"{PLATFORM}/done"} | body
    return deployment.call("POST", f"/v1/tenants/acme/accounts/{name}/oauth/start", json=body, expect=expect)


def test_the_connect_flow_creates_a_new_account_only_once_the_grant_is_verified(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.call("PUT", "/v1/tenants/acme", json={"display_name": "Acme"})
    # The gmail preset's host is smtp.gmail.com: point it at the local XOAUTH2 server for the test.
    real = preset_for

    def local(account: Any, pm: Any) -> Any:
        found = real(account, pm)
        return found.model_copy(update={"host": "127.0.0.1", "port": xoauth2_smtp.port}) if found else None

    monkeypatch.setattr("pipeline.control.accounts.preset_for", local)
    monkeypatch.setattr("pipeline.smtp.verify.preset_for", local)
    started = start_new(deployment, "sales", provider="google", from_email=MAILBOX, from_name="Acme Sales")
    assert started["provider"] == "google" and "login_hint=owner%40mailbox.example" in started["authorization_url"]
    deployment.call("GET", "/v1/tenants/acme/accounts/sales", expect=404)  # nothing exists before the callback

    consent = __import__("httpx").get(started["authorization_url"], follow_redirects=False, trust_env=False)
    back = deployment.client.get(consent.headers["location"], follow_redirects=False)

    assert back.status_code == 303 and back.headers["location"] == f"{PLATFORM}/done?result=connected&account=sales"
    shown = deployment.call("GET", "/v1/tenants/acme/accounts/sales")
    assert shown["provider"] == "gmail" and shown["auth_method"] == "xoauth2" and shown["status"] == "active"
    assert shown["from_email"] == MAILBOX and shown["from_name"] == "Acme Sales" and shown["verified_at"] is not None
    assert shown["oauth"]["connected"] is True and shown["default"] is True  # the tenant's first account
    assert xoauth2_smtp.accepted_logins == 1
    with Session(make_engine(deployment.config.database.resolved_url() or "")) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "account.create")).one()
        assert entry.target == "sales" and entry.actor.endswith("(oauth connect)") and "rt-" not in json.dumps(entry.after)
    sending = loaded(deployment, "acme", "sales")
    assert sending.resolved.oauth is not None and sending.resolved.username == MAILBOX

    # Starting again for the now existing account connects it (no second account); a different mailbox is refused.
    assert start_new(deployment, "sales")["provider"] == "google"
    refused = start_new(deployment, "sales", expect=409, from_email="other@mailbox.example")
    assert refused["field"] == "from_email"


def test_a_new_accounts_start_names_the_field_that_is_missing_or_wrong(deployment: Deployment, provider: FakeProvider) -> None:
    deployment.call("PUT", "/v1/tenants/acme", json={"display_name": "Acme"})
    assert start_new(deployment, "fresh", expect=404)["detail"].startswith("no account 'fresh'")
    assert start_new(deployment, "fresh", expect=422, from_email=MAILBOX)["field"] == "provider"
    assert start_new(deployment, "fresh", expect=422, provider="generic", from_email=MAILBOX)["field"] == "provider"
    assert start_new(deployment, "fresh", expect=422, provider="google")["field"] == "from_email"
    assert start_new(deployment, "fresh", expect=422, provider="google", from_email="not an address")["field"] == "from_email"
    assert start_new(deployment, "bad name!", expect=422, provider="google", from_email=MAILBOX)["field"] in ("name", "path.name")
    assert start_new(deployment, "fresh", expect=422, provider="microsoft", from_email=MAILBOX)["field"] == "provider"
    assert provider.exchanges == 0


def test_a_new_account_whose_smtp_check_fails_is_not_created(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP
) -> None:
    deployment.call("PUT", "/v1/tenants/acme", json={"display_name": "Acme"})
    started = start_new(deployment, "sales", provider="google", from_email=MAILBOX)  # smtp.gmail.com: unreachable here
    consent = __import__("httpx").get(started["authorization_url"], follow_redirects=False, trust_env=False)
    back = deployment.client.get(consent.headers["location"], follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].endswith("result=error&account=sales&error=verification_failed")
    deployment.call("GET", "/v1/tenants/acme/accounts/sales", expect=404)


# --- reply tracking of a registry account over XOAUTH2 ------------------------------------------------------


def test_inbox_watch_reads_a_registry_xoauth2_accounts_mailbox_with_its_token(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, tls_files: Any, redis_client: redis.Redis
) -> None:
    from test_imap_xoauth2 import DOVECOT, OAuthDovecot, append_as_owner, reply, sent_original

    from pipeline.context import build_context
    from pipeline.control.build import control_context
    from pipeline.control.hostguard import HostPolicy
    from pipeline.control.schemas import AccountPatch
    from pipeline.control.scope import Principal, resolve_scope
    from pipeline.inbox.supervisor import Supervisor, reply_mailboxes

    if DOVECOT is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    dovecot = OAuthDovecot(tls_files, provider).start()
    try:
        connected(deployment, xoauth2_smtp.port)
        control = control_context(deployment.config)
        assert control is not None
        control.verifier.hosts = HostPolicy.from_lists(["127.0.0.1/32"], [dovecot.port, xoauth2_smtp.port])
        from pipeline.control import accounts

        with control.transaction() as session:
            scope = resolve_scope(session, Principal(actor="test", admin=True), "acme")
        imap = {"host": "127.0.0.1", "port": dovecot.port, "security": "starttls", "username": MAILBOX}
        accounts.update_account(
            control, scope, "main", AccountPatch.model_validate({"imap": imap, "reply_tracking": True}), verify=False
        )
        ctx = build_context(deployment.config)
        message_id = sent_original(ctx, "acme", "acme-1")
        append_as_owner(dovecot, provider, tls_files, reply(message_id))
        refreshes = provider.refreshes
        supervisor = Supervisor(ctx, registry=reply_mailboxes(ctx), interval=0.5, lease_seconds=5)
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        try:
            state = eventually(lambda: ctx.status.get("acme", "acme-1").state, lambda s: s == "replied", timeout=30)  # type: ignore[union-attr]
            assert state == "replied"
            poller = supervisor.poller("account:acme/main")
            assert poller is not None and poller.stats.connects >= 1 and poller.stats.errors == 0
        finally:
            supervisor.stop.set()
            thread.join(30)
        assert provider.refreshes - refreshes <= 1  # the SMTP check's token was cached: at most one more
        control.engine.dispose()
    finally:
        dovecot.kill()
