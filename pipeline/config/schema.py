"""Configuration (docs/architecture.md: "Configuration"): TOML, validated, every problem named with file and line."""

from __future__ import annotations

import enum
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.config.inbox import ImapSettings, SharedInboxConfig
from pipeline.config.oauth import AccountOAuth, AuthMethod, OAuthConfig
from pipeline.config.serve import ServeConfig, TrackingConfig, WebhooksConfig
from pipeline.db.settings import DatabaseConfig
from pipeline.models import check_header_value, normalise_address
from pipeline.plugin_host.presets import Limits, Security
from pipeline.secrets import SecretRef


class Strategy(enum.StrEnum):
    LEAST_USED_TODAY = "least_used_today"
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"


class AmbiguousSendPolicy(enum.StrEnum):
    RESEND = "resend"  # at-least-once: a crash between 250 and the ledger write may duplicate
    SKIP = "skip"  # at-most-once: treat the unconfirmed attempt as sent


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(_Section):
    url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "mailpipe-broker"
    heartbeat_timeout_ms: int = Field(default=15_000, ge=1_000)
    maintenance_chance: int = Field(default=1000, ge=1)
    prefetch: int = Field(default=64, ge=1)

    @property
    def kind(self) -> Literal["redis", "rabbitmq", "stub"]:
        if self.url.startswith(("amqp://", "amqps://")):
            return "rabbitmq"
        if self.url.startswith("stub://"):
            return "stub"
        return "redis"


class RedisConfig(_Section):
    """State store (ledger, limits, status, suppression). Defaults to the broker's Redis."""

    url: str | None = None


class AccountConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    provider: str = "smtp"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    region: str | None = None
    username: str | None = None
    password: SecretRef | None = None
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None
    envelope_from: str | None = None
    limits: Limits | None = None
    weight: int = Field(default=1, ge=1)
    pool_size: int = Field(default=5, ge=1, le=100)
    timeout: float = Field(default=30.0, gt=0)
    allow_plaintext_auth: bool = False
    verify_tls: bool = True
    ca_file: str | None = None
    local_hostname: str | None = None
    max_message_bytes: int = Field(default=10_000_000, ge=1_000)
    options: dict[str, Any] = Field(default_factory=dict)
    imap: ImapSettings | None = None  # the account's own mailbox, for replies and bounces
    auth_method: AuthMethod | None = None  # None: whatever the server offers for a password
    oauth: AccountOAuth | None = None  # the grant for auth_method = "xoauth2"

    @field_validator("auth_method", mode="before")
    @classmethod
    def _auth_method_any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _oauth_goes_with_xoauth2(self) -> AccountConfig:
        if self.auth_method == AuthMethod.XOAUTH2 and self.oauth is None:
            raise ValueError('oauth: auth_method = "xoauth2" needs oauth = { provider, client_id, refresh_token, … }')
        if self.oauth is not None and self.auth_method != AuthMethod.XOAUTH2:
            raise ValueError('auth_method: an account with oauth must say auth_method = "xoauth2"')
        if self.oauth is not None:
            self.oauth.endpoint()  # a generic provider without token_url is refused here, naming the field
        return self

    @field_validator("from_email", "reply_to", "envelope_from")
    @classmethod
    def _valid_address(cls, value: str | None) -> str | None:
        return None if value is None else normalise_address(value)

    @field_validator("from_name", "username", "host")
    @classmethod
    def _no_control_chars(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else check_header_value(value, info.field_name)

    def __repr__(self) -> str:  # the password is a SecretRef, but keep repr short anyway
        return f"AccountConfig(name={self.name!r}, provider={self.provider!r}, host={self.host!r})"


class RouteMatch(_Section):
    campaign: str | None = None
    list: str | None = None
    sender: str | None = None  # the event's `sender` (an agent, a user, a brand) as the platform names it

    def matches(self, campaign: str | None, list_name: str | None, sender: str | None = None) -> bool:
        return (
            (self.campaign is None or self.campaign == campaign)
            and (self.list is None or self.list == list_name)
            and (self.sender is None or self.sender == sender)
        )


class RouteConfig(_Section):
    name: str | None = None
    match: RouteMatch
    accounts: list[str] = Field(min_length=1)
    strategy: Strategy = Strategy.LEAST_USED_TODAY
    tracking_domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")  # for its click links

    @model_validator(mode="after")
    def _match_not_empty(self) -> RouteConfig:
        if self.match.campaign is None and self.match.list is None and self.match.sender is None:
            raise ValueError("match needs campaign, list and/or sender")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [f"{k}={v}" for k, v in self.match.model_dump(exclude_none=True).items()]
        return ",".join(parts)


class DefaultConfig(_Section):
    account: str


class TemplatesConfig(_Section):
    dir: str = "templates"
    max_output_chars: int = Field(default=500_000, ge=1_000)


class RetryConfig(_Section):
    max_attempts: int = Field(default=8, ge=1)
    base_delay: float = Field(default=60.0, ge=0)
    max_delay: float = Field(default=3600.0, ge=0)
    max_age: float = Field(default=3 * 86400.0, gt=0)
    jitter: float = Field(default=0.1, ge=0, le=1)


class SendConfig(_Section):
    ambiguous: AmbiguousSendPolicy = AmbiguousSendPolicy.RESEND
    message_id_domain: str | None = None
    max_message_bytes: int = Field(default=10_000_000, ge=1_000)


class RateLimitConfig(_Section):
    """Shared limits (docs/architecture.md: "Rate limits"). Jitter is off by default (0 ms)."""

    jitter_ms: int = Field(default=0, ge=0, le=3_600_000)  # random extra gap/wait, "randomize delay"
    timezone: str = "UTC"  # daily counters reset at this zone's midnight
    providers: dict[str, Limits] = Field(default_factory=dict)  # shared by all accounts of the provider
    domains: dict[str, Limits] = Field(default_factory=dict)  # per recipient domain, across all accounts
    paused_recheck: float = Field(default=30.0, gt=0, le=86_400)  # how often waiting mail re-checks paused accounts
    # Slots are spaced this fraction wider than the limit, so network and scheduling jitter between our
    # clock and the provider's does not push its own count over; the send-time gate is exact.
    headroom: float = Field(default=0.05, ge=0, le=0.5)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("domains")
    @classmethod
    def _lowercase_domains(cls, value: dict[str, Limits]) -> dict[str, Limits]:
        return {domain.strip().lower(): limits for domain, limits in value.items()}


class SuppressionConfig(_Section):
    soft_bounce_limit: int = Field(default=5, ge=1)
    soft_bounce_window: float = Field(default=30 * 86400.0, gt=0)


class SweeperConfig(_Section):
    """Re-drive accepted events that made no progress (pipeline/runtime/sweeper.py); runs in every worker."""

    enabled: bool = True
    stalled_after: float = Field(default=900.0, ge=1.0)  # seconds past the time an event was due to move
    interval: float = Field(default=30.0, ge=0.1)
    batch: int = Field(default=1000, ge=1)


class RetentionConfig(_Section):
    """``[retention]``: how long each store keeps what (seconds, except ``delivery_log`` in days)."""

    hot: float = Field(default=86_400.0, ge=1)  # a final event's status hash and history stay in Redis this long
    dedupe_window: float = Field(default=30 * 86_400.0, ge=1)  # a resubmitted event_id is a duplicate this long
    feedback_window: float = Field(default=30 * 86_400.0, ge=1)  # Message-ID index entries in Redis; the database after
    stream_max_age: float = Field(default=86_400.0, ge=1)  # events stream entries older than this are trimmed
    delivery_log: int = Field(default=90, ge=1, le=3650)  # days of delivery log in PostgreSQL (whole daily partitions)


class TenantFallback(enum.StrEnum):
    NONE = "none"  # a tenant without a usable account of its own gets `failed`, reason no_account
    PLATFORM = "platform"  # ... or sends through the `default` tenant's active account


class StickyUnavailable(enum.StrEnum):
    WAIT = "wait"  # a follow-up waits for the mailbox that sent the first message
    MOVE = "move"  # ... or leaves from another account of the route


class TenantsConfig(_Section):
    """``[tenants]``: how workers resolve and hold tenants' accounts."""

    fallback: TenantFallback = TenantFallback.NONE
    no_account_wait: float = Field(default=300.0, ge=0)  # seconds a message waits for an account before no_account
    sticky_unavailable: StickyUnavailable = StickyUnavailable.WAIT
    sticky_days: float = Field(default=90.0, gt=0)  # how long a campaign remembers a recipient's mailbox
    # Tenant snapshots held per worker process (LRU): memory grows with the tenants actually sending
    # (~15-20 KB each), not with this cap; below the number of active tenants every batch reloads some.
    max_cached: int = Field(default=10_000, ge=1)
    recheck_seconds: float = Field(default=1.0, gt=0)  # version check of held snapshots, if a NOTIFY was lost
    max_smtp_sessions: int = Field(default=200, ge=1)  # open SMTP sessions per worker process, all accounts


class PluginsConfig(_Section):
    paths: list[str] = Field(default_factory=list)


class SecretsConfig(_Section):
    """``[secrets]``: master keys wrapping tenants' data keys (by reference); the first encrypts, all decrypt."""

    master_keys: list[SecretRef] = Field(default_factory=list)


class Config(_Section):
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    # Both required without a database (pipeline.config.validate says so); with one, tenants' accounts live there.
    accounts: list[AccountConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    default: DefaultConfig | None = None
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    send: SendConfig = Field(default_factory=SendConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    suppression: SuppressionConfig = Field(default_factory=SuppressionConfig)
    sweeper: SweeperConfig = Field(default_factory=SweeperConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    tenants: TenantsConfig = Field(default_factory=TenantsConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    inbox: SharedInboxConfig | None = None  # one shared bounce mailbox
    serve: ServeConfig = Field(default_factory=ServeConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    oauth: OAuthConfig = Field(default_factory=OAuthConfig)  # the connect flow's OAuth apps and state secret
    base_dir: str = "."

    @property
    def redis_url(self) -> str:
        if self.redis.url:
            return self.redis.url
        if self.broker.kind == "redis":
            return self.broker.url
        return "redis://127.0.0.1:6379/0"

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    @property
    def templates_dir(self) -> Path:
        return (Path(self.base_dir) / self.templates.dir).resolve()

    def message_id_domain(self) -> str:
        """``[send] message_id_domain``, else the default (or first) declared account's domain, else this host's name."""
        if self.send.message_id_domain:
            return self.send.message_id_domain
        declared = [a for a in self.accounts if self.default is not None and a.name == self.default.account]
        for account in declared or self.accounts:
            return account.from_email.rsplit("@", 1)[1]
        host = socket.getfqdn()
        return host if "." in host and not host.endswith(".") else "mailpipe.invalid"
