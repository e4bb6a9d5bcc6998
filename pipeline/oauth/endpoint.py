"""A provider's token endpoint, through authlib's httpx client: refresh a grant, exchange a consent code.

Every answer becomes an :class:`AccessToken`, a :class:`GrantRefused` (the provider said no for good)
or a :class:`TokenEndpointUnavailable` (it did not answer usefully: try again later).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.config.resolve import ResolvedOAuth
from pipeline.oauth.errors import GrantRefused, TokenEndpointUnavailable
from pipeline.observe.redact import remember

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

DEFAULT_TIMEOUT = 10.0
# RFC 6749 §5.2 codes that no retry fixes; anything else the endpoint says is taken as passing.
PERMANENT_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type", "invalid_request"}
)
DEFAULT_LIFETIME = 3600.0  # when the endpoint omits expires_in


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # epoch seconds
    refresh_token: str | None = field(default=None, repr=False)  # a rotated one, when the provider sent it
    scope: str | None = None

    def lifetime(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)


def _authlib() -> Any:
    """authlib's httpx integration, imported on the first call to an endpoint: with httpx it is ~0.2 s of
    CPU that a process sending with passwords only (and every worker until its first OAuth account) skips."""
    from authlib.deprecate import AuthlibDeprecationWarning

    with warnings.catch_warnings():  # authlib prefers the httpx2 fork and says so on import; httpx is what we ship
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.integrations import httpx_client
    return httpx_client


def _client(client_id: str, client_secret: str | None, timeout: float, **extra: Any) -> AsyncOAuth2Client:
    import httpx

    client: AsyncOAuth2Client = _authlib().AsyncOAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_post" if client_secret else "none",
        timeout=httpx.Timeout(timeout),
        trust_env=False,
        **extra,
    )
    return client


def _token(raw: dict[str, Any], now: float) -> AccessToken:
    value = raw.get("access_token")
    if not isinstance(value, str) or not value:
        raise TokenEndpointUnavailable("the token endpoint answered without an access_token")
    try:
        lifetime = float(raw.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    remember(value)
    refresh = raw.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        remember(refresh)
    else:
        refresh = None
    scope = raw.get("scope")
    return AccessToken(value, now + lifetime, refresh, scope if isinstance(scope, str) else None)


async def _call(request: Any, url: str) -> dict[str, Any]:
    """Await an authlib token request and sort its failure into refused or unavailable."""
    import httpx

    oauth_error: type[OAuthError] = _authlib().OAuthError
    try:
        result: dict[str, Any] = dict(await request)
    except oauth_error as exc:
        error = str(exc.error or "unknown_error")
        if error in PERMANENT_ERRORS:
            raise GrantRefused(error, exc.description) from None
        raise TokenEndpointUnavailable(f"token endpoint {url} answered {error}") from None
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status >= 500 or status in (408, 429):
            raise TokenEndpointUnavailable(f"token endpoint {url} answered HTTP {status}") from None
        raise GrantRefused(f"http_{status}") from None
    except httpx.TimeoutException:
        raise TokenEndpointUnavailable(f"token endpoint {url} timed out") from None
    except httpx.TransportError as exc:
        raise TokenEndpointUnavailable(f"token endpoint {url} unreachable: {type(exc).__name__}") from None
    except ValueError:
        raise TokenEndpointUnavailable(f"token endpoint {url} answered something that is not a JSON object") from None
    return result


async def refresh(grant: ResolvedOAuth, *, timeout: float = DEFAULT_TIMEOUT) -> AccessToken:
    """A new access token for the grant's refresh token."""
    secret = grant.client_secret.get_secret_value() if grant.client_secret else None
    now = time.time()
    async with _client(grant.client_id, secret, timeout, scope=" ".join(grant.scopes) or None) as client:
        raw = await _call(
            client.refresh_token(grant.token_url, refresh_token=grant.refresh_token.get_secret_value()), grant.token_url
        )
    return _token(raw, now)


async def exchange_code(
    *,
    token_url: str,
    client_id: str,
    client_secret: str | None,
    code: str,
    code_verifier: str,
    redirect_url: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> AccessToken:
    """The authorization-code grant with its PKCE verifier (RFC 7636)."""
    now = time.time()
    async with _client(client_id, client_secret, timeout, redirect_uri=redirect_url) as client:
        raw = await _call(client.fetch_token(token_url, code=code, code_verifier=code_verifier), token_url)
    return _token(raw, now)


def authorization_url(
    *,
    authorize_url: str,
    client_id: str,
    redirect_url: str,
    scopes: tuple[str, ...],
    state: str,
    code_verifier: str,
    extra: dict[str, str] | None = None,
) -> str:
    """The provider's consent URL for the authorization-code grant with an S256 PKCE challenge."""
    client = _client(
        client_id, None, DEFAULT_TIMEOUT, redirect_uri=redirect_url, scope=" ".join(scopes), code_challenge_method="S256"
    )
    url, _ = client.create_authorization_url(authorize_url, state=state, code_verifier=code_verifier, **(extra or {}))
    return str(url)
