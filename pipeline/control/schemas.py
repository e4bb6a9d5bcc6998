"""Input and output shapes of the control plane, shared by the HTTP API and the CLI.

Every header-bound field refuses CR/LF (header injection), every string is bounded, secrets are
write-only: outputs say ``password_set`` and never carry the value or its length.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, StringConstraints, field_validator, model_validator

from pipeline.models import check_header_value, normalise_address
from pipeline.plugin_host.presets import Limits, Security

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Password = Annotated[SecretStr, Field(min_length=1, max_length=1024)]


class AuthMethod(enum.StrEnum):
    PLAIN = "PLAIN"
    LOGIN = "LOGIN"
    CRAM_MD5 = "CRAM-MD5"


class Strategy(enum.StrEnum):
    LEAST_USED_TODAY = "least_used_today"
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1000)


def _header(value: str | None, field: str) -> str | None:
    return None if value is None else check_header_value(value, field)


def _address(value: str | None) -> str | None:
    return None if value is None else normalise_address(value)


class TenantIn(_In):
    display_name: str | None = Field(default=None, max_length=200)

    @field_validator("display_name")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return _header(value, "display_name")


class TenantOut(BaseModel):
    tenant: str
    display_name: str | None
    accounts: int
    created_at: dt.datetime


class TenantList(BaseModel):
    tenants: list[TenantOut]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")


class ImapIn(_In):
    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = Security.TLS
    username: str = Field(min_length=1, max_length=320)
    password: Password | None = None
    folder: str = Field(default="INBOX", min_length=1, max_length=200)

    @field_validator("host", "username", "folder")
    @classmethod
    def _clean(cls, value: str, info: Any) -> str:
        return check_header_value(value, f"imap.{info.field_name}")

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == Security.TLS else 143)


class _AccountFields(_In):
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    host: str | None = Field(default=None, min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    region: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,32}$")
    username: str | None = Field(default=None, min_length=1, max_length=320)
    password: Password | None = None
    auth_method: AuthMethod | None = None
    from_email: str | None = Field(default=None, max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=320)
    envelope_from: str | None = Field(default=None, max_length=320)
    limits: Limits | None = None
    description: str | None = Field(default=None, max_length=1000)
    imap: ImapIn | None = None
    reply_tracking: bool | None = None
    default_for: list[Annotated[str, StringConstraints(min_length=1, max_length=320)]] | None = Field(
        default=None, max_length=200, description="senders/agents this account is the default for"
    )

    @field_validator("provider", "host", "username", "from_name", "description")
    @classmethod
    def _no_line_breaks(cls, value: str | None, info: Any) -> str | None:
        return _header(value, info.field_name)

    @field_validator("from_email", "reply_to", "envelope_from")
    @classmethod
    def _valid_address(cls, value: str | None, info: Any) -> str | None:
        try:
            return _address(value)
        except ValueError as exc:
            raise ValueError(f"{info.field_name}: {exc}") from None

    @field_validator("default_for")
    @classmethod
    def _clean_senders(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_header_value(v, "default_for") for v in value]


class AccountIn(_AccountFields):
    """A new account: ``provider`` fills host, port, security, username convention and limits."""

    name: Name
    provider: str = Field(default="smtp", min_length=1, max_length=64)
    from_email: str = Field(max_length=320)


class AccountPatch(_AccountFields):
    """Only the fields sent change; without ``password`` the stored one is kept."""


class ImapOut(BaseModel):
    host: str
    port: int
    security: str
    username: str
    folder: str
    password_set: bool


class OAuthOut(BaseModel):
    """An account connected over OAuth (auth_method xoauth2); its tokens are never shown."""

    provider: str
    connected: bool
    scopes: list[str]


class AccountOut(BaseModel):
    name: str
    provider: str
    host: str | None
    port: int | None
    security: str | None
    region: str | None
    username: str | None
    password_set: bool
    auth_method: str | None
    from_email: str
    from_name: str | None
    reply_to: str | None
    envelope_from: str | None
    limits: dict[str, Any]
    description: str | None
    imap: ImapOut | None
    oauth: OAuthOut | None = Field(default=None, description="set when connected with Google or Microsoft (xoauth2)")
    reply_tracking: bool
    default_for: list[str]
    status: str = Field(description="active, paused or auth_failed")
    status_reason: str | None = Field(description="why it is not active, e.g. reconnect_needed (the OAuth grant was revoked)")
    status_hint: str | None = Field(default=None, description="what to do about status_reason, when mailpipe knows")
    default: bool = Field(description='the tenant\'s active account ("Set as active"): exactly one per tenant')
    managed_by_file: bool = Field(description="declared in the TOML (mailpipe config apply): read-only over the API")
    verified_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AccountList(BaseModel):
    accounts: list[AccountOut]


class VerifyIn(_In):
    send_test_to: str | None = Field(default=None, max_length=320)

    @field_validator("send_test_to")
    @classmethod
    def _valid(cls, value: str | None) -> str | None:
        return _address(value)


class StepOut(BaseModel):
    step: str
    ok: bool
    detail: str
    elapsed_ms: float | None
    reply: str | None


class VerifyReport(BaseModel):
    ok: bool
    account: str
    endpoint: str
    steps: list[StepOut]
    hints: list[str]
    # A new refresh token the XOAUTH2 check's refresh was answered with: kept by the caller, never shown.
    _rotated_refresh_token: str | None = PrivateAttr(default=None)

    @property
    def rotated_refresh_token(self) -> str | None:
        return self._rotated_refresh_token


class RouteMatchIn(_In):
    campaign: str | None = Field(default=None, min_length=1, max_length=200)
    list: str | None = Field(default=None, min_length=1, max_length=200)
    sender: str | None = Field(default=None, min_length=1, max_length=320)


class RouteIn(_In):
    name: Name | None = None
    match: RouteMatchIn
    accounts: list[Name] = Field(min_length=1, max_length=100)
    strategy: Strategy = Strategy.LEAST_USED_TODAY
    tracking_domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")

    @model_validator(mode="after")
    def _match_not_empty(self) -> RouteIn:
        if self.match.campaign is None and self.match.list is None and self.match.sender is None:
            raise ValueError("match needs campaign, list and/or sender")
        return self


class RoutesIn(_In):
    routes: list[RouteIn] = Field(max_length=500, description="ordered: the first match wins")


class RouteOut(BaseModel):
    name: str | None
    match: dict[str, str]
    accounts: list[str]
    strategy: str
    tracking_domain: str | None


class RoutesOut(BaseModel):
    routes: list[RouteOut]
    managed_by_file: bool


class KeyIn(_In):
    name: str | None = Field(default=None, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=3)

    @field_validator("name")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return _header(value, "name")

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from .scope import ALL_SCOPES

        unknown = [s for s in value if s not in ALL_SCOPES]
        if unknown:
            raise ValueError(f"unknown scope(s) {unknown}; choose from {list(ALL_SCOPES)}")
        return sorted(set(value))


class KeyOut(BaseModel):
    key_id: str
    prefix: str = Field(description="the key's visible start, e.g. mp_live_ab12cd34ef56")
    name: str | None
    scopes: list[str]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class KeyCreated(KeyOut):
    key: str = Field(repr=False, description="the secret key: shown this once, stored only as a hash")


class KeyList(BaseModel):
    keys: list[KeyOut]


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditList(BaseModel):
    entries: list[AuditOut]
    next_cursor: int | None
