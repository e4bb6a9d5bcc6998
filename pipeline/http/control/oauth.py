"""The "Connect with Google/Microsoft" flow: ``POST …/accounts/{name}/oauth/start`` and ``GET /v1/oauth/callback``.

A platform starts the flow for one of its tenant's accounts and sends its user to the answered
authorization URL; the provider sends the user back to the callback, which checks the signed,
single-use ``state``, exchanges the code (PKCE), verifies SMTP with the grant, stores it sealed in the
account and redirects (303) to the platform's ``return_url`` with ``result=connected`` or ``error``.
A state that does not verify gets a 400 problem, never a redirect: its return URL cannot be trusted.

Starting for a name that has no account yet creates one, when the body names ``provider`` (google or
microsoft: the gmail or outlook preset's host, port and security) and ``from_email`` (the mailbox). It is
checked at start but exists only once the callback has the grant and SMTP accepted it (there is no
pending account row: until then GET answers 404, and a failed or abandoned consent leaves nothing).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Annotated

import redis
import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from pipeline.config import Config
from pipeline.config.oauth import AUTHORIZE_URLS, DEFAULT_SCOPES, TOKEN_URLS, OAuthAppConfig, OAuthConfig, OAuthProvider
from pipeline.control import accounts
from pipeline.control.context import ControlContext
from pipeline.control.errors import Conflict, ControlError, Invalid, NotConfigured, NotFound
from pipeline.control.schemas import AccountIn
from pipeline.control.scope import ACCOUNTS_MANAGE, Principal, TenantScope
from pipeline.http.control.auth import AccountName, Control, Scope
from pipeline.http.control.problems import ProblemRoute, responses
from pipeline.limits.account_state import AccountState, Health
from pipeline.oauth import endpoint
from pipeline.oauth.connect import (
    ConnectState,
    PendingConnect,
    PendingConnects,
    StateSigner,
    check_return_url,
    new_connect_id,
    new_verifier,
    with_result,
)
from pipeline.oauth.errors import OAuthError, StateRefused
from pipeline.plugin_host.manager import provider_family
from pipeline.registry.refs import account_ref

log = structlog.get_logger("mailpipe.oauth")

router = APIRouter(tags=["oauth"], route_class=ProblemRoute)
# The SMTP preset an account names → the OAuth app that can grant it.
PRESET_PROVIDERS = {"gmail": OAuthProvider.GOOGLE, "outlook": OAuthProvider.MICROSOFT}
# Google hands out a refresh token only for offline access, and again only when consent is shown.
EXTRA_PARAMS = {OAuthProvider.GOOGLE: {"access_type": "offline", "prompt": "consent"}}
ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


class OAuthStartIn(BaseModel):
    model_config = {"extra": "forbid"}

    return_url: str = Field(min_length=1, max_length=2000, description="where the user is sent back (https)")
    provider: OAuthProvider | None = Field(default=None, description="default: from the account's provider preset")
    login_hint: str | None = Field(default=None, max_length=320, description="the mailbox, pre-filled on the consent screen")
    from_email: str | None = Field(
        default=None,
        max_length=320,
        description="a new account's mailbox (with provider: required when the account does not exist)",
    )
    from_name: str | None = Field(default=None, max_length=200, description="a new account's display name")


class OAuthStartOut(BaseModel):
    authorization_url: str = Field(description="send the mailbox owner's browser here")
    provider: OAuthProvider
    scopes: list[str]
    expires_at: float = Field(description="epoch seconds: the consent must be finished before this")


@dataclass
class ConnectService:
    """What the two endpoints share: the OAuth apps, the state signer and Redis for pending connects."""

    settings: OAuthConfig
    signer: StateSigner
    client: redis.Redis

    @classmethod
    def from_config(cls, config: Config, client: redis.Redis) -> ConnectService:
        ref = config.oauth.state_secret or config.serve.secret
        if ref is None:
            raise NotConfigured("the OAuth connect flow needs [oauth] state_secret (or [serve] secret)")
        error = ref.check()
        if error:
            raise NotConfigured(f"oauth.state_secret: {error}")
        return cls(config.oauth, StateSigner(ref.resolve()), client)

    def app(self, provider: OAuthProvider) -> OAuthAppConfig:
        found = self.settings.app(provider)
        if found is None:
            raise Invalid(f"provider: this deployment has no [oauth.{provider.value}] app", field="provider")
        return found

    def __repr__(self) -> str:
        return f"ConnectService(providers={[p.value for p in self.settings.configured()]})"


def connect_service(request: Request) -> ConnectService:
    """Built once per app from ``[oauth]`` and the serve Redis client (or set by the app's builder)."""
    found: ConnectService | None = getattr(request.app.state, "oauth_connect", None)
    if found is None:
        serve = getattr(request.app.state, "serve", None)
        if serve is None:
            raise NotConfigured("the OAuth connect flow is not configured in this app")
        found = request.app.state.oauth_connect = ConnectService.from_config(serve.config, serve.client)
    return found


Connect = Annotated[ConnectService, Depends(connect_service)]


def _provider(ctx: ControlContext, service: ConnectService, account_provider: str, asked: OAuthProvider | None) -> OAuthProvider:
    if asked is not None:
        return asked
    preset = ctx.provider(account_provider)
    found = PRESET_PROVIDERS.get(provider_family(preset.name if preset else account_provider))
    if found is not None:
        return found
    configured = service.settings.configured()
    if len(configured) == 1:
        return configured[0]
    raise Invalid("provider: say which OAuth app connects this account (google or microsoft)", field="provider")


def _scopes(ctx: ControlContext, app: OAuthAppConfig, provider: OAuthProvider, account_provider: str) -> tuple[str, ...]:
    if app.scopes:
        return tuple(app.scopes)
    preset = ctx.provider(account_provider)
    if preset is not None and preset.oauth_scopes:
        return preset.oauth_scopes
    return DEFAULT_SCOPES.get(provider, ())


@router.post(
    "/v1/tenants/{tenant}/accounts/{name}/oauth/start",
    summary="Start connecting an account with Google or Microsoft (answers the consent URL); creates a new one on success",
    response_model=OAuthStartOut,
    responses=responses(401, 403, 404, 409, 422, 503),
)
def start(ctx: Control, scope: Scope, service: Connect, name: AccountName, body: OAuthStartIn) -> OAuthStartOut:
    existing, new = accounts.oauth_connect_target(
        ctx, scope, name, provider=body.provider, from_email=body.from_email, from_name=body.from_name
    )
    try:
        return_url = check_return_url(body.return_url, service.settings.return_origins)
    except ValueError as exc:
        raise Invalid(str(exc), field="return_url") from None
    account_provider = existing.provider if existing is not None else new.provider if new is not None else ""
    provider = _provider(ctx, service, account_provider, body.provider)
    app = service.app(provider)
    scopes = _scopes(ctx, app, provider, account_provider)
    authorize_url = str(app.authorize_url) if app.authorize_url else AUTHORIZE_URLS[provider]
    expires_at = time.time() + app.state_ttl
    connect_id, verifier = new_connect_id(), new_verifier()
    spec = new.model_dump(mode="json", exclude_none=True) if new is not None else None
    PendingConnects(service.client).put(connect_id, PendingConnect(scope.tenant_id, scope.actor, verifier, spec), app.state_ttl)
    state = service.signer.sign(ConnectState(scope.slug, name, provider, connect_id, return_url, expires_at))
    extra = dict(EXTRA_PARAMS.get(provider, {}))
    hint = body.login_hint or (new.from_email if new is not None else None)
    if hint:
        extra["login_hint"] = hint
    url = endpoint.authorization_url(
        authorize_url=authorize_url,
        client_id=app.client_id,
        redirect_url=str(app.redirect_url),
        scopes=scopes,
        state=state,
        code_verifier=verifier,
        extra=extra,
    )
    return OAuthStartOut(authorization_url=url, provider=provider, scopes=list(scopes), expires_at=expires_at)


def _redirect(return_url: str, result: dict[str, str]) -> RedirectResponse:
    response = RedirectResponse(with_result(return_url, result), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the callback URL held the code
    return response


@router.get(
    "/v1/oauth/callback",
    summary="Where the provider sends the user back; redirects (303) to the return_url with the result",
    status_code=303,
    responses=responses(400, 503),
)
def callback(
    ctx: Control,
    service: Connect,
    state: Annotated[str, Query(max_length=4096)] = "",
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> RedirectResponse:
    try:
        found = service.signer.verify(state)
        pending = PendingConnects(service.client).take(found.connect_id)
    except StateRefused as exc:
        raise ControlError(str(exc), field="state") from None
    failed = {"result": "error", "account": found.account}
    if error or not code:
        reason = error if error and ERROR_CODE.match(error) else "no_code"
        return _redirect(found.return_url, failed | {"error": reason})
    app = service.settings.app(found.provider)
    if app is None:  # the deployment dropped the app between start and callback
        return _redirect(found.return_url, failed | {"error": "provider_not_configured"})
    token_url = str(app.token_url) if app.token_url else TOKEN_URLS[found.provider]
    client_secret = app.client_secret.resolve().get_secret_value()
    try:
        token = asyncio.run(
            endpoint.exchange_code(
                token_url=token_url,
                client_id=app.client_id,
                client_secret=client_secret,
                code=code,
                code_verifier=pending.verifier,
                redirect_url=str(app.redirect_url),
            )
        )
    except OAuthError as exc:
        log.warning("oauth_exchange_failed", tenant=found.tenant, account=found.account, error=str(exc))
        return _redirect(found.return_url, failed | {"error": "token_exchange_failed"})
    if not token.refresh_token:
        return _redirect(found.return_url, failed | {"error": "no_refresh_token"})
    scopes = token.scope.split() if token.scope else list(_scopes(ctx, app, found.provider, ""))
    grant = {
        "oauth_provider": found.provider.value,
        "oauth_client_id": app.client_id,
        "oauth_client_secret": client_secret,
        "oauth_refresh_token": token.refresh_token,
        "oauth_token_url": token_url,
        "oauth_scopes": " ".join(scopes),
    }
    principal = Principal(
        actor=f"{pending.actor} (oauth connect)",
        admin=False,
        tenant_id=pending.tenant_id,
        tenant_slug=found.tenant,
        scopes=frozenset({ACCOUNTS_MANAGE}),
    )
    scope = TenantScope(pending.tenant_id, found.tenant, principal)
    try:
        if pending.new_account is not None:
            accounts.create_account(ctx, scope, AccountIn.model_validate(pending.new_account), grant=grant)
        else:
            accounts.connect_oauth(ctx, scope, found.account, grant)
    except NotFound:
        return _redirect(found.return_url, failed | {"error": "account_not_found"})
    except Conflict:
        error = "account_exists" if pending.new_account is not None else "account_changed"
        return _redirect(found.return_url, failed | {"error": error})
    except ControlError as exc:
        log.warning("oauth_connect_refused", tenant=found.tenant, account=found.account, error=exc.detail)
        return _redirect(found.return_url, failed | {"error": "verification_failed"})
    runtime = AccountState(service.client)  # worker-side pause after a revoked grant: the new grant lifts it
    ref = account_ref(found.tenant, found.account)
    if runtime.health(ref).get("health") == Health.AUTH_FAILED.value:
        runtime.resume(ref)
    return _redirect(found.return_url, {"result": "connected", "account": found.account})
