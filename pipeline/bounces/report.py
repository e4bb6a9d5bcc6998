"""What a bounce mail says, per recipient, and the CLI's JSON contract."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    NOT_BOUNCE = "not_bounce"


class BounceCategory(enum.StrEnum):
    BOUNCE = "bounce"
    DELIVERED = "delivered"
    AUTOREPLY = "autoreply"
    FEEDBACK = "feedback"
    UNKNOWN = "unknown"


class BouncedRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str
    kind: BounceKind = BounceKind.SOFT
    reason: str = "undefined"
    status: str | None = None
    smtp_reply: str | None = None
    reply_code: int | None = None
    action: str | None = None
    remote_mta: str | None = None
    command: str | None = None


class BounceReport(BaseModel):
    """The parser's answer. `category` says what kind of mail it was."""

    model_config = ConfigDict(extra="forbid")

    is_bounce: bool = False
    kind: BounceKind = BounceKind.NOT_BOUNCE
    reason: str = "undefined"
    status: str | None = None
    category: BounceCategory = BounceCategory.UNKNOWN
    recipients: list[BouncedRecipient] = Field(default_factory=list)
    original_message_id: str | None = None
    family: str | None = None
    subject: str | None = None
    # The parser itself failed: the answer says nothing about the mail (logged and counted).
    internal_error: bool = False

    @classmethod
    def not_bounce(cls, category: BounceCategory = BounceCategory.UNKNOWN, reason: str = "undefined") -> BounceReport:
        return cls(category=category, reason=reason)


def to_json_dict(report: BounceReport) -> dict[str, Any]:
    """The exact `mailpipe bounce classify --json` contract, nothing more."""
    return {
        "is_bounce": report.is_bounce,
        "kind": str(report.kind),
        "reason": report.reason,
        "status": report.status,
        "recipients": [
            {
                "address": r.address,
                "kind": str(r.kind),
                "reason": r.reason,
                "status": r.status,
                "smtp_reply": r.smtp_reply,
            }
            for r in report.recipients
        ],
        "original_message_id": report.original_message_id,
    }
