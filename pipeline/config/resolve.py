"""An account with its provider preset applied: the one shape the sender, limiter and verifier use."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr

from pipeline.config.oauth import AuthMethod, OAuthProvider
from pipeline.config.schema import AccountConfig
from pipeline.errors import ConfigError
from pipeline.plugin_host.presets import Limits, ProviderPreset, Security


class ResolvedOAuth(BaseModel):
    """An account's OAuth grant with its secrets resolved and its endpoint and scopes filled in."""

    model_config = ConfigDict(frozen=True)

    provider: OAuthProvider
    client_id: str
    client_secret: SecretStr | None
    refresh_token: SecretStr
    token_url: str
    scopes: tuple[str, ...]


class ResolvedAccount(BaseModel):
    """An account with its preset applied: what the sender and limiter use."""

    model_config = ConfigDict(frozen=True)

    name: str
    provider: str
    host: str
    port: int
    security: Security
    username: str | None
    password: SecretStr | None
    limits: Limits
    pool_size: int
    timeout: float
    allow_plaintext_auth: bool
    verify_tls: bool
    ca_file: str | None
    local_hostname: str
    max_message_bytes: int
    auth_method: AuthMethod | None = None
    oauth: ResolvedOAuth | None = None


def limits_of(account: AccountConfig, preset: ProviderPreset | None) -> Limits:
    """The limits the send gate enforces: the preset's (its variant's, e.g. Gmail Workspace) under the account's own."""
    return (preset.limits if preset else Limits()).merged(account.limits)


def resolve_account(account: AccountConfig, preset: ProviderPreset | None) -> ResolvedAccount:
    """Fill an account's unset fields from its provider preset; raise ConfigError if incomplete."""
    host = account.host or (preset.host_for(account.region) if preset else None)
    if not host:
        if preset and preset.requires_region and not account.region:
            raise ConfigError([f"account {account.name}: provider {preset.name} needs region"])
        raise ConfigError([f"account {account.name}: host is required"])
    security = account.security or (preset.security if preset else Security.STARTTLS)
    default_port = {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25}[security]
    port = account.port or (preset.port if preset and account.security in (None, preset.security) else default_port)
    limits = limits_of(account, preset)
    return ResolvedAccount(
        name=account.name,
        provider=account.provider,
        host=host,
        port=port,
        security=security,
        username=account.username
        or (preset.username if preset else None)
        or (account.from_email if account.auth_method == AuthMethod.XOAUTH2 else None),
        password=account.password.resolve() if account.password else None,
        limits=limits,
        pool_size=account.pool_size,
        timeout=account.timeout,
        allow_plaintext_auth=account.allow_plaintext_auth,
        verify_tls=account.verify_tls,
        ca_file=account.ca_file,
        local_hostname=account.local_hostname or "mailpipe.localhost",
        max_message_bytes=account.max_message_bytes,
        auth_method=account.auth_method,
        oauth=resolve_oauth(account),
    )


def resolve_oauth(account: AccountConfig) -> ResolvedOAuth | None:
    grant = account.oauth
    if grant is None:
        return None
    return ResolvedOAuth(
        provider=grant.provider,
        client_id=grant.client_id,
        client_secret=grant.client_secret.resolve() if grant.client_secret else None,
        refresh_token=grant.refresh_token.resolve(),
        token_url=grant.endpoint(),
        scopes=grant.scope_list(),
    )
