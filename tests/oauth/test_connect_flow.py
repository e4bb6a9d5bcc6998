"""The connect flow: start → the fake provider's consent redirect → callback → sealed grant, SMTP verified, redirect.

Real parts: PostgreSQL registry, Redis, the control API, an aiosmtpd server that accepts only XOAUTH2 tokens
the fake provider vouches for. Forged, expired and replayed states are refused with a 400, never redirected.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import redis
from connect_testbed import MAILBOX, PLATFORM, Deployment
from fake_provider import FakeProvider
from sqlalchemy import select
from sqlalchemy.orm import Session
from xoauth2_smtp import XOAuth2SMTP

from pipeline.config.oauth import AuthMethod, OAuthProvider
from pipeline.control.crypto import Keyring
from pipeline.db.engine import make_engine
from pipeline.db.tables import AuditEntry, SmtpAccount
from pipeline.oauth.connect import ConnectState, PendingConnect, PendingConnects
from pipeline.plugin_host.manager import get_plugin_manager
from pipeline.registry.sources import DatabaseSource


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def registry_account(deployment: Deployment, tenant: str, name: str):  # type: ignore[no-untyped-def]
    """The account as worker processes load it from the registry."""
    config = deployment.config
    url = config.database.resolved_url()
    assert url is not None
    source = DatabaseSource(make_engine(url), Keyring.from_refs(config.secrets.master_keys), get_plugin_manager())
    try:
        return source.load(tenant).accounts[name]
    finally:
        source.engine.dispose()


def test_the_connect_flow_stores_the_grant_sealed_verifies_smtp_and_redirects_with_the_result(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP, redis_client: redis.Redis
) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    started = deployment.call(
        "POST",
        "/v1/tenants/acme/accounts/main/oauth/start",
        json={"return_url": f"{PLATFORM}/done?tab=mail", "login_hint": MAILBOX},
    )
    assert started["provider"] == "google" and started["scopes"] == ["https://mail.google.com/"]
    asked = query_of(started["authorization_url"])
    assert started["authorization_url"].startswith(provider.authorize_url + "?")
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["response_type"] == "code" and asked["scope"] == "https://mail.google.com/"
    assert asked["redirect_uri"] == "http://testserver/v1/oauth/callback"
    assert asked["access_type"] == "offline" and asked["prompt"] == "consent" and asked["login_hint"] == MAILBOX
    assert "code_verifier" not in asked

    consent = httpx.get(started["authorization_url"], follow_redirects=False, trust_env=False)
    back = deployment.client.get(consent.headers["location"], follow_redirects=False)

    assert back.status_code == 303, back.text
    assert back.headers["location"] == f"{PLATFORM}/done?tab=mail&result=connected&account=main"
    assert provider.exchanges == 1
    assert xoauth2_smtp.accepted_logins == 1  # verified over SMTP with the new grant before saving
    shown = deployment.call("GET", "/v1/tenants/acme/accounts/main")
    assert shown["auth_method"] == "xoauth2" and shown["password_set"] is False
    assert shown["oauth"] == {"provider": "google", "connected": True, "scopes": ["https://mail.google.com/"]}
    assert shown["verified_at"] is not None
    refresh_token = next(iter(t for t, u in provider.refresh_tokens.items() if u == MAILBOX))
    listed = json.dumps(deployment.call("GET", "/v1/tenants/acme/accounts"))
    assert refresh_token not in listed and "rt-" not in listed and "client-secret" not in listed
    with Session(make_engine(deployment.config.database.resolved_url() or "")) as session:
        row = session.scalars(select(SmtpAccount).where(SmtpAccount.name == "main")).one()
        assert row.secret is not None and refresh_token.encode() not in row.secret  # sealed
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "account.oauth_connect")).one()
        assert refresh_token not in json.dumps(audit.after) and audit.after["oauth"]["connected"] is True
    sending = registry_account(deployment, "acme", "main")
    assert sending.config.auth_method == AuthMethod.XOAUTH2
    assert sending.resolved.oauth is not None and sending.resolved.oauth.provider == OAuthProvider.GOOGLE
    assert sending.resolved.oauth.refresh_token.get_secret_value() == refresh_token
    assert sending.resolved.username == MAILBOX
    assert not redis_client.keys("mailpipe:oauth:connect:*")  # the pending connect was consumed


def test_a_replayed_state_is_refused_with_a_problem_and_no_redirect(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP
) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    started = deployment.call("POST", "/v1/tenants/acme/accounts/main/oauth/start", json={"return_url": f"{PLATFORM}/x"})

    callback = httpx.get(started["authorization_url"], follow_redirects=False, trust_env=False).headers["location"]
    assert deployment.client.get(callback, follow_redirects=False).status_code == 303
    again = deployment.client.get(callback, follow_redirects=False)
    assert again.status_code == 400 and "location" not in again.headers
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["field"] == "state" and "already used" in again.json()["detail"]
    assert provider.exchanges == 1  # the replay never reached the token endpoint


def test_a_forged_or_altered_state_is_refused_before_any_lookup(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP
) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    started = deployment.call("POST", "/v1/tenants/acme/accounts/main/oauth/start", json={"return_url": f"{PLATFORM}/x"})
    state = query_of(started["authorization_url"])["state"]
    payload, mac = state.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["r"] = "https://attacker.example/steal"  # point the redirect elsewhere, keep the signature
    altered = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    for forged in (f"{altered}.{mac}", "garbage", f"{payload}.{'A' * len(mac)}", ""):
        answer = deployment.client.get("/v1/oauth/callback", params={"code": "x", "state": forged}, follow_redirects=False)
        assert answer.status_code == 400, (forged, answer.text)
        assert "location" not in answer.headers and "attacker" not in answer.text
    # The real state still works once: the forgeries consumed nothing.

    callback = httpx.get(started["authorization_url"], follow_redirects=False, trust_env=False).headers["location"]
    assert deployment.client.get(callback, follow_redirects=False).headers["location"].endswith("result=connected&account=main")
    assert provider.exchanges == 1


def test_an_expired_state_is_refused(deployment: Deployment, xoauth2_smtp: XOAuth2SMTP, provider: FakeProvider) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    PendingConnects(deployment.service.client).put("c-expired", PendingConnect(1, "admin:test", "v" * 64), 60)
    state = deployment.service.signer.sign(
        ConnectState("acme", "main", OAuthProvider.GOOGLE, "c-expired", f"{PLATFORM}/x", time.time() - 1)
    )
    answer = deployment.client.get("/v1/oauth/callback", params={"code": "x", "state": state}, follow_redirects=False)
    assert answer.status_code == 400 and "expired" in answer.json()["detail"] and "location" not in answer.headers
    assert provider.exchanges == 0


def test_the_mailbox_owner_declining_consent_comes_back_as_an_error_result(
    deployment: Deployment, xoauth2_smtp: XOAuth2SMTP
) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    started = deployment.call("POST", "/v1/tenants/acme/accounts/main/oauth/start", json={"return_url": f"{PLATFORM}/x"})
    state = query_of(started["authorization_url"])["state"]
    answer = deployment.client.get(
        "/v1/oauth/callback", params={"error": "access_denied", "state": state}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{PLATFORM}/x?result=error&account=main&error=access_denied"
    assert deployment.call("GET", "/v1/tenants/acme/accounts/main")["oauth"] is None


def test_a_grant_smtp_refuses_is_not_saved_and_the_user_is_told(
    deployment: Deployment, provider: FakeProvider, xoauth2_smtp: XOAuth2SMTP
) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port, from_email="someone-else@mailbox.example")
    back = deployment.connect("acme", "main")  # the consent is for owner@, the account is someone-else@
    assert back.status_code == 303
    assert query_of(back.headers["location"]) == {
        "tab": "mail",
        "result": "error",
        "account": "main",
        "error": "verification_failed",
    }
    shown = deployment.call("GET", "/v1/tenants/acme/accounts/main")
    assert shown["auth_method"] is None and shown["oauth"] is None


def test_return_urls_must_be_https_or_an_allowed_origin(deployment: Deployment, xoauth2_smtp: XOAuth2SMTP) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    start = "/v1/tenants/acme/accounts/main/oauth/start"
    for bad in (
        "http://evil.example/cb",
        "javascript:alert(1)",
        "//evil.example/cb",
        "https://user:pw@app.example/cb",
        "https://app.example/cb#frag",
        f"{PLATFORM}.evil.example/cb",
        "http://platform.localhost:3001/cb",
    ):
        answer = deployment.call("POST", start, json={"return_url": bad}, expect=422)
        assert answer["field"] == "return_url", bad
    assert deployment.call("POST", start, json={"return_url": "https://app.example/cb"})["provider"] == "google"
    answer = deployment.call("POST", start, json={"return_url": "https://app.example/cb", "provider": "microsoft"}, expect=422)
    assert answer["field"] == "provider" and "[oauth.microsoft]" in answer["detail"]


def test_only_the_tenants_own_key_with_accounts_manage_may_start(deployment: Deployment, xoauth2_smtp: XOAuth2SMTP) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    deployment.call("PUT", "/v1/tenants/globex", json={})
    globex = deployment.call("POST", "/v1/tenants/globex/keys", json={"scopes": ["accounts:manage"]})["key"]
    acme_events = deployment.call("POST", "/v1/tenants/acme/keys", json={"scopes": ["events:write"]})["key"]
    acme = deployment.call("POST", "/v1/tenants/acme/keys", json={"scopes": ["accounts:manage"]})["key"]
    body = {"return_url": "https://app.example/cb"}
    start = "/v1/tenants/acme/accounts/main/oauth/start"
    deployment.call("POST", start, token=globex, json=body, expect=404)
    deployment.call("POST", start, token=acme_events, json=body, expect=403)
    deployment.call("POST", start, token="nope", json=body, expect=401)
    deployment.call("POST", "/v1/tenants/acme/accounts/absent/oauth/start", token=acme, json=body, expect=404)
    assert deployment.call("POST", start, token=acme, json=body)["authorization_url"]


def test_later_updates_keep_the_grant_and_switching_back_to_a_password_drops_it(
    deployment: Deployment, xoauth2_smtp: XOAuth2SMTP
) -> None:
    deployment.account("acme", "main", xoauth2_smtp.port)
    assert deployment.connect("acme", "main").headers["location"].endswith("result=connected&account=main")
    changed = deployment.call(
        "PATCH", "/v1/tenants/acme/accounts/main", json={"from_name": "Acme Sales", "limits": {"per_day": 50}}
    )
    assert changed["oauth"]["connected"] is True and changed["auth_method"] == "xoauth2"
    assert registry_account(deployment, "acme", "main").resolved.oauth is not None
    moved = deployment.call(
        "PATCH", "/v1/tenants/acme/accounts/main?verify=true", json={"port": xoauth2_smtp.port, "host": "127.0.0.1"}
    )
    assert moved["verification"]["ok"] is True  # a connection change is verified again, with the stored grant
    back = deployment.call(
        "PATCH",
        "/v1/tenants/acme/accounts/main?verify=false",
        json={"auth_method": "PLAIN", "username": "owner", "password": "app-password-1"},
    )
    assert back["oauth"] is None and back["auth_method"] == "PLAIN" and back["password_set"] is True
    sending = registry_account(deployment, "acme", "main")
    assert sending.resolved.oauth is None and sending.config.auth_method is None
    assert sending.resolved.password is not None and sending.resolved.password.get_secret_value() == "app-password-1"
