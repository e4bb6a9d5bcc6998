"""OAuth settings: an account's grant (``oauth = {…}``) and the deployment's OAuth apps (``[oauth.google]``).

Secrets (client secret, refresh token) are references like every other secret in the file. The
well-known endpoints of Google and Microsoft are filled in here so an account names only its provider.
"""

from __future__ import annotations

import enum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from pipeline.secrets import SecretRef


class OAuthProvider(enum.StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    GENERIC = "generic"


class AuthMethod(enum.StrEnum):
    """How the account logs in; ``xoauth2`` needs an ``oauth`` grant, the others a password."""

    PLAIN = "plain"
    LOGIN = "login"
    CRAM_MD5 = "cram-md5"
    XOAUTH2 = "xoauth2"


# The providers' published endpoints and the scopes mail submission needs.
AUTHORIZE_URLS: dict[OAuthProvider, str] = {
    OAuthProvider.GOOGLE: "https://accounts.google.com/o/oauth2/v2/auth",
    OAuthProvider.MICROSOFT: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
}
TOKEN_URLS: dict[OAuthProvider, str] = {
    OAuthProvider.GOOGLE: "https://oauth2.googleapis.com/token",
    OAuthProvider.MICROSOFT: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
}
DEFAULT_SCOPES: dict[OAuthProvider, tuple[str, ...]] = {
    OAuthProvider.GOOGLE: ("https://mail.google.com/",),
    # IMAP reply tracking needs https://outlook.office.com/IMAP.AccessAsUser.All added to the account's scopes.
    OAuthProvider.MICROSOFT: ("https://outlook.office.com/SMTP.Send", "offline_access"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountOAuth(_Section):
    """``oauth = { provider, client_id, client_secret, refresh_token, token_url?, scopes? }`` on an account."""

    provider: OAuthProvider
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretRef | None = None  # public clients (PKCE only) have none
    refresh_token: SecretRef
    token_url: HttpUrl | None = None
    scopes: list[str] | None = None

    def endpoint(self) -> str:
        """The token endpoint: the one given, else the provider's; a generic provider must give it."""
        if self.token_url is not None:
            return str(self.token_url)
        if self.provider in TOKEN_URLS:
            return TOKEN_URLS[self.provider]
        raise ValueError("oauth.token_url is required for provider generic")

    def scope_list(self) -> tuple[str, ...]:
        return tuple(self.scopes) if self.scopes is not None else DEFAULT_SCOPES.get(self.provider, ())

    def __repr__(self) -> str:
        return f"AccountOAuth(provider={self.provider.value!r}, client_id={self.client_id!r})"


class OAuthAppConfig(_Section):
    """``[oauth.google]`` / ``[oauth.microsoft]``: the deployment's OAuth app, shown on the consent screen."""

    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretRef
    redirect_url: HttpUrl  # this deployment's GET /v1/oauth/callback, as registered with the provider
    authorize_url: HttpUrl | None = None  # only to point at another server (tests, sovereign clouds)
    token_url: HttpUrl | None = None
    scopes: list[str] | None = None
    state_ttl: float = Field(default=600.0, ge=30, le=3600)  # seconds the user has to finish consent

    @field_validator("scopes")
    @classmethod
    def _scopes_not_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not s.strip() or " " in s for s in value):
            raise ValueError("each scope is one non-empty word")
        return value

    def __repr__(self) -> str:
        return f"OAuthAppConfig(client_id={self.client_id!r})"


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped (how return URLs are allow-listed)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme.lower()}://{netloc}"


class OAuthConfig(_Section):
    """``[oauth]``: the connect flow's OAuth apps (``[oauth.google]``, ``[oauth.microsoft]``) and its ``state``.

    ``state_secret`` signs the connect flow's ``state`` (``[serve] secret`` when unset). A ``return_url``
    must be https, or start with one of ``return_origins`` (``http://localhost:3000`` while developing).
    """

    google: OAuthAppConfig | None = None
    microsoft: OAuthAppConfig | None = None
    generic: OAuthAppConfig | None = None  # any other RFC 6749 server; authorize_url and token_url are then required
    state_secret: SecretRef | None = None
    return_origins: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("return_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"return_origins: {item!r} is not an origin like https://app.example.com")
            if parts.username or parts.password or parts.query or parts.fragment:
                raise ValueError(f"return_origins: {item!r} is not an origin like https://app.example.com")
            out.append(origin_of(item))
        return out

    @field_validator("generic")
    @classmethod
    def _generic_endpoints(cls, value: OAuthAppConfig | None) -> OAuthAppConfig | None:
        if value is not None and (value.authorize_url is None or value.token_url is None):
            raise ValueError("generic: authorize_url and token_url are required for a generic OAuth app")
        return value

    def app(self, provider: OAuthProvider) -> OAuthAppConfig | None:
        found: OAuthAppConfig | None = getattr(self, provider.value)
        return found

    def configured(self) -> list[OAuthProvider]:
        return [p for p in OAuthProvider if self.app(p) is not None]
