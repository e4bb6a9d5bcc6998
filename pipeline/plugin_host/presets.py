"""Provider presets: what a provider plugin supplies so an account needs only credentials."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class Security(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class Limits(BaseModel):
    """Sending limits; None means unlimited on that window."""

    model_config = ConfigDict(extra="forbid")

    per_second: float | None = Field(default=None, gt=0)
    per_minute: int | None = Field(default=None, gt=0)
    per_hour: int | None = Field(default=None, gt=0)
    per_day: int | None = Field(default=None, gt=0)

    def merged(self, override: Limits | None) -> Limits:
        if override is None:
            return self
        values = self.model_dump()
        values.update(override.model_dump(exclude_unset=True))
        return Limits(**values)


class ProviderPreset(BaseModel):
    """Defaults for one provider; an account naming it overrides any field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    host: str | None = None  # may hold {region}
    port: int = 587
    security: Security = Security.STARTTLS
    username: str | None = None  # fixed username convention, e.g. SendGrid's "apikey"
    auth_methods: tuple[str, ...] = ("PLAIN", "LOGIN")
    oauth_scopes: tuple[str, ...] = ()  # what an XOAUTH2 grant must cover, when auth_methods has XOAUTH2
    limits: Limits = Field(default_factory=Limits)
    max_recipients: int | None = None
    requires_region: bool = False
    notes: tuple[str, ...] = ()

    def host_for(self, region: str | None) -> str | None:
        if self.host is None:
            return None
        if "{region}" in self.host:
            return self.host.format(region=region) if region else None
        return self.host
