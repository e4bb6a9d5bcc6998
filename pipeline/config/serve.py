"""Config sections for `mailpipe serve`, click tracking and provider webhooks (docs/architecture.md: "Edges")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.models import normalise_address
from pipeline.secrets import SecretRef

HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$"
PUBLIC_URL = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"


class ServeConfig(BaseModel):
    """``[serve]``: where it listens, who may ingest, how links are signed and bounded requests."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    ingest_tokens: list[SecretRef] = Field(default_factory=list)
    secret: SecretRef | None = None  # signs unsubscribe, click and open tokens
    public_url: str | None = Field(default=None, pattern=PUBLIC_URL)  # base of /u/{token} links
    unsubscribe_mailto: str | None = None
    tracking_domain: str | None = Field(default=None, pattern=HOSTNAME)
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=5_000_000, ge=1_000, le=100_000_000)
    # Control plane (docs/architecture.md: "Tenants and the control plane"): admin tokens manage tenants and keys;
    # tenant hosts are untrusted.
    admin_tokens: list[SecretRef] = Field(default_factory=list)
    allow_hosts: list[str] = Field(default_factory=list)  # CIDR ranges tenants' SMTP/IMAP hosts may resolve into
    allow_ports: list[int] = Field(default_factory=list)  # ports allowed besides SMTP 25/465/587/2525 and IMAP 143/993
    verify_per_minute: int = Field(default=10, ge=1, le=10_000)  # connection checks per tenant per minute
    trusted_ca_file: str | None = None  # extra CA for tenants' servers (a local relay with a private CA)

    @field_validator("allow_hosts")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"allow_hosts: {item!r} is not an address range (e.g. 127.0.0.1/32)") from None
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _valid_mailto(cls, value: str | None) -> str | None:
        return None if value is None else normalise_address(value, smtputf8=False)


class TrackingConfig(BaseModel):
    """``[tracking]``: click tracking per campaign, off unless a campaign is listed (``"*"`` for all)."""

    model_config = ConfigDict(extra="forbid")

    campaigns: list[str] = Field(default_factory=list)
    open_pixel: bool = False

    def tracks(self, campaign: str | None) -> bool:
        return "*" in self.campaigns or (campaign is not None and campaign in self.campaigns)


class WebhooksConfig(BaseModel):
    """``[webhooks]``: the replay window, and one ``[webhooks.<provider>]`` table per provider.

    A provider table is handed to that provider's plugin as it is, with every ``env:``/``file:``
    value resolved to a secret (``[webhooks.mailgun] signing_key = "env:MAILGUN_WEBHOOK_KEY"``).
    """

    model_config = ConfigDict(extra="allow")

    replay_window: float = Field(default=300.0, ge=1, le=86_400)

    @model_validator(mode="after")
    def _providers_are_tables(self) -> WebhooksConfig:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):
                raise ValueError(f"webhooks.{name} must be a table ([webhooks.{name}])")
        return self

    @property
    def providers(self) -> dict[str, dict[str, Any]]:
        return dict(self.model_extra or {})


def secret_refs(table: dict[str, Any]) -> dict[str, SecretRef]:
    """The values of a provider table that reference secrets (``env:NAME`` or ``file:PATH``)."""
    return {k: SecretRef(v) for k, v in table.items() if isinstance(v, str) and v.startswith(("env:", "file:"))}


@dataclass(frozen=True)
class WebhookKeys:
    """What a built-in provider's ``[webhooks.<provider>]`` table may hold, and what it needs to verify."""

    secrets: tuple[str, ...]  # texts, literal or ``env:``/``file:``
    settings: tuple[str, ...] = ()  # other keys, checked one by one in config.validate
    needs: tuple[tuple[str, ...], ...] = ()  # one of these groups, in full, or every request is refused

    @property
    def keys(self) -> tuple[str, ...]:
        return self.secrets + self.settings


WEBHOOK_KEYS: dict[str, WebhookKeys] = {
    "sendgrid": WebhookKeys(secrets=("public_key",), needs=(("public_key",),)),
    "mailgun": WebhookKeys(secrets=("signing_key",), needs=(("signing_key",),)),
    "postmark": WebhookKeys(secrets=("username", "password", "path_token"), needs=(("username", "password"), ("path_token",))),
    "ses": WebhookKeys(
        secrets=(), settings=("topic_arns", "confirm_subscriptions", "certificates_dir"), needs=(("topic_arns",),)
    ),
}
