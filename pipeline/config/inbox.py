"""IMAP settings, per account (`imap = {...}`) or one shared bounce mailbox (`[inbox]`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.plugin_host.presets import Security
from pipeline.secrets import SecretRef

_DEFAULT_PORTS = {Security.TLS: 993, Security.STARTTLS: 143, Security.NONE: 143}


def _no_control_chars(value: str, field: str) -> str:
    if any(ch in value for ch in ("\r", "\n", "\x00")):
        raise ValueError(f"{field} must not contain CR, LF or NUL characters")
    return value


class ImapSettings(BaseModel):
    """One mailbox to watch. Mail is never moved or deleted unless one of the two options says so."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = Security.TLS
    username: str = Field(min_length=1, max_length=320)
    password: SecretRef | None = None  # required unless the account logs in with XOAUTH2 (checked in validate)
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1, max_length=20)
    move_processed_to: str | None = Field(default=None, min_length=1, max_length=200)
    delete_processed: bool = False
    idle: bool = True
    idle_timeout: float = Field(default=600.0, ge=1, le=1740)  # RFC 2177: re-issue within 29 minutes
    poll_interval: float = Field(default=60.0, ge=0.05, le=3600)
    timeout: float = Field(default=30.0, gt=0, le=600)
    verify_tls: bool = True
    ca_file: str | None = None
    allow_plaintext_auth: bool = False
    max_message_bytes: int = Field(default=1_000_000, ge=4_096, le=50_000_000)
    backfill_days: int = Field(default=14, ge=0, le=3650)
    batch_size: int = Field(default=100, ge=1, le=10_000)

    @field_validator("host", "username", "move_processed_to")
    @classmethod
    def _clean(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else _no_control_chars(value, info.field_name)

    @field_validator("folders")
    @classmethod
    def _clean_folders(cls, folders: list[str]) -> list[str]:
        for folder in folders:
            if not folder or len(folder) > 200:
                raise ValueError("each folder name must be 1-200 characters")
            _no_control_chars(folder, "folders")
            if not folder.isascii():
                raise ValueError("folder names must be ASCII (write non-ASCII names in IMAP modified UTF-7)")
        if len(set(folders)) != len(folders):
            raise ValueError("folders must not repeat")
        return folders

    @model_validator(mode="after")
    def _one_disposal(self) -> ImapSettings:
        if self.move_processed_to and self.delete_processed:
            raise ValueError("set move_processed_to or delete_processed, not both")
        if self.move_processed_to in self.folders:
            raise ValueError("move_processed_to must not be one of the watched folders")
        return self

    @property
    def resolved_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]

    @property
    def read_only(self) -> bool:
        return not (self.move_processed_to or self.delete_processed)

    def __repr__(self) -> str:
        return f"ImapSettings(host={self.host!r}, port={self.resolved_port}, username={self.username!r})"

    __str__ = __repr__


class SharedInboxConfig(ImapSettings):
    """The top-level `[inbox]` table: one bounce mailbox for every account (e.g. VERP returns)."""

    name: str = Field(default="shared", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
