"""Configuration (ARCHITECTURE §5): TOML, validated, every problem named with file and line."""

from __future__ import annotations

import enum
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError
from pipeline.http.settings import ServeConfig, TrackingConfig, WebhooksConfig
from pipeline.inbox.settings import ImapSettings, SharedInboxConfig
from pipeline.models import check_header_value, normalise_address
from pipeline.plugin_host.presets import Limits, ProviderPreset, Security
from pipeline.secrets import SecretRef

CONFIG_ENV = "MAILPIPE_CONFIG"


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

    def matches(self, campaign: str | None, list_name: str | None) -> bool:
        if self.campaign is not None and self.campaign != campaign:
            return False
        if self.list is not None and self.list != list_name:
            return False
        return True


class RouteConfig(_Section):
    name: str | None = None
    match: RouteMatch
    accounts: list[str] = Field(min_length=1)
    strategy: Strategy = Strategy.LEAST_USED_TODAY
    tracking_domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")  # for its click links

    @model_validator(mode="after")
    def _match_not_empty(self) -> RouteConfig:
        if self.match.campaign is None and self.match.list is None:
            raise ValueError("match needs campaign and/or list")
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
    """Shared limits (ARCHITECTURE §6). Jitter is off by default (0 ms)."""

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


class PluginsConfig(_Section):
    paths: list[str] = Field(default_factory=list)


class Config(_Section):
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    accounts: list[AccountConfig] = Field(min_length=1)
    routes: list[RouteConfig] = Field(default_factory=list)
    default: DefaultConfig
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    send: SendConfig = Field(default_factory=SendConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    suppression: SuppressionConfig = Field(default_factory=SuppressionConfig)
    sweeper: SweeperConfig = Field(default_factory=SweeperConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    inbox: SharedInboxConfig | None = None  # one shared bounce mailbox
    serve: ServeConfig = Field(default_factory=ServeConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
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
        if self.send.message_id_domain:
            return self.send.message_id_domain
        return self.account(self.default.account).from_email.rsplit("@", 1)[1]


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
    limits = (preset.limits if preset else Limits()).merged(account.limits)
    return ResolvedAccount(
        name=account.name,
        provider=account.provider,
        host=host,
        port=port,
        security=security,
        username=account.username or (preset.username if preset else None),
        password=account.password.resolve() if account.password else None,
        limits=limits,
        pool_size=account.pool_size,
        timeout=account.timeout,
        allow_plaintext_auth=account.allow_plaintext_auth,
        verify_tls=account.verify_tls,
        ca_file=account.ca_file,
        local_hostname=account.local_hostname or "mailpipe.localhost",
        max_message_bytes=account.max_message_bytes,
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a config file; raise ConfigError listing every problem with its line."""
    path = Path(path or os.environ.get(CONFIG_ENV) or "mailpipe.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    raw.setdefault("base_dir", str(path.parent.resolve()))
    locate = _Locator(text)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            msg = error["msg"].removeprefix("Value error, ")
            problems.append(f"{path}:{locate.line(loc)}: {_dotted(loc)}: {msg}")
        problems += [f"{path}:{locate.line(loc)}: {_dotted(loc)}: {msg}" for loc, msg in raw_references(raw)]
        raise ConfigError(problems) from None
    problems = [f"{path}:{locate.line(loc)}: {_dotted(loc)}: {msg}" for loc, msg in cross_check(config)]
    if problems:
        raise ConfigError(problems)
    return config


def cross_check(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Problems pydantic cannot see alone: references between sections."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    names = [account.name for account in config.accounts]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append((("accounts", index, "name"), f"duplicate account name {name!r}"))
        seen.add(name)
    for index, route in enumerate(config.routes):
        for name in route.accounts:
            if name not in seen:
                problems.append((("routes", index, "accounts"), f"unknown account {name!r}"))
    problems += _serve_problems(config)
    if config.default.account not in seen:
        problems.append((("default", "account"), f"unknown account {config.default.account!r}"))
    for index, account in enumerate(config.accounts):
        if account.password is not None:
            error = account.password.check()
            if error:
                problems.append((("accounts", index, "password"), error))
        if account.imap is not None and (error := account.imap.password.check()):
            problems.append((("accounts", index, "imap"), f"imap password: {error}"))
        if account.limits and account.limits.per_second and account.limits.per_day:
            if account.limits.per_second > account.limits.per_day:
                problems.append((("accounts", index, "limits"), "per_second exceeds per_day"))
    if config.inbox is not None and (error := config.inbox.password.check()):
        problems.append((("inbox", "password"), f"imap password: {error}"))
    return problems


def _serve_problems(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Render signs unsubscribe and click links, so workers need [serve] secret as soon as links are on."""
    serve = config.serve
    problems: list[tuple[tuple[Any, ...], str]] = []
    links_on = serve.public_url is not None or bool(config.tracking.campaigns)
    if links_on and serve.secret is None:
        problems.append((("serve", "secret"), "secret is required when public_url or [tracking] campaigns are set"))
    elif serve.secret is not None and (error := serve.secret.check()):
        problems.append((("serve", "secret"), error))
    if config.tracking.campaigns and not serve.tracking_domain:
        problems.append((("tracking", "campaigns"), "click tracking needs [serve] tracking_domain (routes may override it)"))
    return problems


def raw_references(raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Reference problems found in the raw TOML, so one run reports them beside schema errors."""
    accounts = raw.get("accounts") if isinstance(raw.get("accounts"), list) else []
    names = {a.get("name") for a in accounts if isinstance(a, dict)}
    problems: list[tuple[tuple[Any, ...], str]] = []
    routes = raw.get("routes") if isinstance(raw.get("routes"), list) else []
    for index, route in enumerate(routes):
        for name in route.get("accounts", []) if isinstance(route, dict) else []:
            if name not in names:
                problems.append((("routes", index, "accounts"), f"unknown account {name!r}"))
    default = raw.get("default")
    if isinstance(default, dict) and "account" in default and default["account"] not in names:
        problems.append((("default", "account"), f"unknown account {default['account']!r}"))
    return problems


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


class _Locator:
    """Finds the line of a key in TOML text: good enough to point an operator at it."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, loc: tuple[Any, ...]) -> int:
        if not loc:
            return 1
        section, rest = str(loc[0]), loc[1:]
        start, end = self._section_range(section, rest[0] if rest and isinstance(rest[0], int) else None)
        if rest and isinstance(rest[0], int):
            rest = rest[1:]
        key = next((str(p) for p in rest if not isinstance(p, int)), None)
        if start is None:
            return self._find_key(section, 0, len(self.lines)) or 1
        if key:
            found = self._find_key(key, start, end)
            if found:
                return found
        return start + 1

    def _section_range(self, section: str, index: int | None) -> tuple[int | None, int]:
        headers = [
            i
            for i, line in enumerate(self.lines)
            if line.strip() in (f"[{section}]", f"[[{section}]]") or line.strip().startswith(f"[{section}.")
        ]
        if not headers:
            return None, len(self.lines)
        pick = headers[index] if index is not None and index < len(headers) else headers[0]
        end = next(
            (i for i in range(pick + 1, len(self.lines)) if self.lines[i].lstrip().startswith("[")),
            len(self.lines),
        )
        return pick, end

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        for i in range(start, end):
            stripped = self.lines[i].lstrip()
            if stripped.startswith(f"{key} ") or stripped.startswith(f"{key}="):
                return i + 1
        return None
