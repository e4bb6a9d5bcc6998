"""A tenant's account connected with the connect flow sends through real worker processes; a revoked grant pauses it.

Real parts: PostgreSQL registry, Redis, worker processes, the XOAUTH2 SMTP server and a password SMTP server.
Only the OAuth provider is a local fake.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis
from connect_testbed import MAILBOX, Deployment
from eventually import wait_until_final
from fake_provider import FakeProvider
from testbed import SMTP_USERS
from xoauth2_smtp import XOAuth2SMTP

from pipeline.oauth.errors import RECONNECT_HINT
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.state import keys
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter


def event(i: int) -> dict[str, Any]:
    return {"event_id": f"acme-{i:04d}", "tenant": "acme", "to": f"lead{i}@leads.example", "subject": "Hi", "text": "Hello"}


def connected(deployment: Deployment, xoauth2_smtp: XOAuth2SMTP, **extra: Any) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port, **extra)
    assert deployment.connect("acme", "main").headers["location"].endswith("result=connected&account=main")
    deployment.call("POST", "/v1/tenants/acme/accounts/main/activate")


def test_a_connected_account_sends_from_worker_processes_with_one_refresh(
    deployment: Deployment,
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    start_workers: Callable[..., Any],
    redis_client: redis.Redis,
) -> None:
    # Above the Gmail preset's 1/s, so the 12 messages take no 12 s and both processes want the token at once.
    connected(deployment, xoauth2_smtp, limits={"per_second": 50})
    refreshes_before = provider.refreshes  # the connect flow's own SMTP check used one
    start_workers(deployment.path, processes=2, threads=4)
    report = Submitter(deployment.config).submit([event(i) for i in range(12)])
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=60, tenant="acme")
    assert set(outcomes.values()) == {"sent"}, outcomes
    assert len(xoauth2_smtp.received) == 12 and {r.user for r in xoauth2_smtp.received} == {MAILBOX}
    assert provider.refreshes - refreshes_before == 1  # two processes, one shared access token


def test_a_revoked_grant_pauses_the_account_reroutes_its_mail_and_tells_the_tenant(
    deployment: Deployment,
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., Any],
    redis_client: redis.Redis,
) -> None:
    connected(deployment, xoauth2_smtp)
    backup = {
        "name": "backup",
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": smtp_server.ports["starttls"],
        "security": "starttls",
        "username": "alpha",
        "password": SMTP_USERS["alpha"],
        "from_email": "backup@acme.example",
    }
    deployment.call("POST", "/v1/tenants/acme/accounts?verify=false", json=backup)
    # A list route, not a campaign: campaign mail sticks to its first mailbox and would wait for main instead.
    routes = [{"name": "all", "match": {"list": "leads"}, "accounts": ["main", "backup"], "strategy": "round_robin"}]
    deployment.call("PUT", "/v1/tenants/acme/routes", json={"routes": routes})
    for token in list(provider.refresh_tokens):
        provider.revoke(token)  # the mailbox owner withdrew consent
    start_workers(deployment.path, processes=2, threads=4)
    report = Submitter(deployment.config).submit([event(i) | {"list": "leads"} for i in range(6)])
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90, tenant="acme")
    stuck = {e: StatusStore(redis_client).get("acme", e) for e, o in outcomes.items() if o != "sent"}
    assert not stuck, {e: s.history if s else None for e, s in stuck.items()}
    assert not xoauth2_smtp.received
    assert len(smtp_server.wait_for(6, timeout=10)) == 6  # every message left through the tenant's other account
    state = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.account_state("default", "acme/main")).items()}
    assert state["paused"] == "1" and state["health"] == "auth_failed"
    stream = [fields for _, fields in redis_client.xrange(keys.events_stream("acme"))]
    reconnect = [f for f in stream if f.get(b"type") == b"account.reconnect_needed"]
    assert len(reconnect) == 1, reconnect  # once, however many workers hit the refusal
    assert reconnect[0][b"account"] == b"main" and reconnect[0][b"hint"].decode() == RECONNECT_HINT
    assert json.loads(reconnect[0][b"entry"])["error"] == "invalid_grant"
    assert not [f for f in redis_client.xrange(keys.events_stream("default")) if f[1].get(b"type") == b"account.reconnect_needed"]
    shown = deployment.call("GET", "/v1/tenants/acme/accounts/main")  # a worker process wrote it to PostgreSQL
    assert (shown["status"], shown["status_reason"], shown["status_hint"]) == ("auth_failed", "reconnect_needed", RECONNECT_HINT)

    # Connecting again lifts the pause: the next mail leaves through main.
    assert deployment.connect("acme", "main").headers["location"].endswith("result=connected&account=main")
    assert redis_client.hget(keys.account_state("default", "acme/main"), "paused") == b"0"
    assert deployment.call("GET", "/v1/tenants/acme/accounts/main")["status"] == "active"
