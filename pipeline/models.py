"""Messages between stages (docs/architecture.md: "Messages between stages"): JSON-serialisable, versioned, ids not objects."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import InvalidEvent

# The stages an email passes, in order: one function each in pipeline/stages/, one broker queue each.
STAGES = ("render", "route", "rate_limit", "send", "classify")
QUEUE_PREFIX = "mailpipe."


def queue_name(stage: str) -> str:
    """The broker queue of a stage."""
    return QUEUE_PREFIX + stage


MAX_FIELD_CHARS = 998  # RFC 5322 line limit: no single header value may exceed it
MAX_BODY_CHARS = 512_000
MAX_DATA_BYTES = 64_000
MAX_EVENT_BYTES = 1_000_000
# CR, LF, NUL, and what Python's email package also splits lines at (str.splitlines): VT, FF,
# FS/GS/RS, NEL, LINE and PARAGRAPH SEPARATOR.
FORBIDDEN_HEADER_CHARS = frozenset("\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def has_line_break(value: str) -> bool:
    return not FORBIDDEN_HEADER_CHARS.isdisjoint(value)


def check_header_value(value: str, field: str) -> str:
    """Refuse CR, LF, NUL and other line breaks: they would let lead data inject SMTP headers."""
    if has_line_break(value):
        raise ValueError(f"{field} must not contain CR, LF, NUL or other line-break characters")
    return value


def normalise_address(value: str, *, smtputf8: bool = True) -> str:
    """Validate an email address (IDNA domains allowed) and return its normal form."""
    check_header_value(value, "address")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=smtputf8)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address: {exc}") from None
    return str(result.normalized)


class RecipientEvent(enum.StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    DELIVERED = "delivered"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    REPLIED = "replied"
    AUTORESPONDED = "autoresponded"
    OPENED = "opened"
    CLICKED = "clicked"


FINAL_OUTCOMES = frozenset(
    {
        RecipientEvent.SENT,
        RecipientEvent.BOUNCED,
        RecipientEvent.FAILED,
        RecipientEvent.SUPPRESSED,
        RecipientEvent.REJECTED,
    }
)


class AccountSignal(enum.StrEnum):
    OK = "ok"
    THROTTLED = "throttled"
    AUTH_FAILED = "auth_failed"
    QUOTA_EXHAUSTED = "quota_exhausted"
    CONNECTION_FAILED = "connection_failed"


class TransportError(enum.StrEnum):
    CONNECT = "connect"
    TLS = "tls"
    AUTH = "auth"
    TIMEOUT = "timeout"
    DROPPED = "dropped"
    PROTOCOL = "protocol"


HARD_REASONS = frozenset({"user_unknown", "host_unknown", "has_moved"})


def is_hard_bounce(reason: str, code: int | None) -> bool:
    """docs/architecture.md: "Outcomes and classification": the address will never work; reputation blocks are soft."""
    if reason in HARD_REASONS:
        return True
    return reason == "not_accept" and code is not None and 500 <= code < 600


# Validation context of items passed between stages: the lead event in them was validated in full
# when it entered the pipeline (submit, HTTP, render), so the costly field checks are not re-run on
# every hop. Types, shapes and lengths are still checked; the MIME writer re-checks every header.
BETWEEN_STAGES = {"between_stages": True}


def _between_stages(info: Any) -> bool:
    context = getattr(info, "context", None)
    return bool(context and context.get("between_stages"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def from_stage(cls, raw: str | bytes) -> Self:
        """Decode an item another stage produced (see BETWEEN_STAGES)."""
        return cls.model_validate_json(raw, context=BETWEEN_STAGES)


class LeadEvent(_Model):
    """Input from upstream. `event_id` is the idempotency key."""

    v: int = 1
    event_id: str = Field(min_length=1, max_length=200)
    tenant: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    sender: str | None = Field(default=None, max_length=200)  # matched by routes and accounts' default_for
    account: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # send from this account of the tenant
    campaign: str | None = Field(default=None, max_length=200)
    list_name: str | None = Field(default=None, alias="list", max_length=200)
    to: str = Field(max_length=320)
    to_name: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    template: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    subject: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    html: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    text: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    data: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)
    send_at: datetime | None = None

    @field_validator("event_id", "sender", "campaign", "list_name", "to_name", "subject")
    @classmethod
    def _no_control_chars(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not _between_stages(info):
            check_header_value(value, info.field_name)
        return value

    @field_validator("tags")
    @classmethod
    def _tags_are_short_and_clean(cls, tags: list[str], info: Any) -> list[str]:
        if _between_stages(info):
            return tags
        for tag in tags:
            check_header_value(tag, "tags")
            if len(tag) > 100:
                raise ValueError("each tag must be at most 100 characters")
        return tags

    @field_validator("to")
    @classmethod
    def _valid_address(cls, value: str, info: Any) -> str:
        return value if _between_stages(info) else normalise_address(value)

    @field_validator("data")
    @classmethod
    def _bounded_data(cls, data: dict[str, Any], info: Any) -> dict[str, Any]:
        if not _between_stages(info) and len(json.dumps(data, default=str)) > MAX_DATA_BYTES:
            raise ValueError(f"data must serialise to at most {MAX_DATA_BYTES} bytes")
        return data

    @model_validator(mode="after")
    def _has_content(self) -> LeadEvent:
        if self.template is None and not (self.subject and (self.html or self.text)):
            raise ValueError("either template, or subject with html or text, is required")
        return self

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.event_id}"


def parse_event(raw: str | bytes | dict[str, Any]) -> LeadEvent:
    """Validate one event; raise InvalidEvent whose errors name each bad field."""
    if isinstance(raw, (str, bytes)):
        if len(raw) > MAX_EVENT_BYTES:
            raise InvalidEvent([f"event: larger than {MAX_EVENT_BYTES} bytes"])
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidEvent([f"event: not valid JSON ({exc})"]) from None
    if not isinstance(raw, dict):
        raise InvalidEvent(["event: must be a JSON object"])
    try:
        return LeadEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> list[str]:
    messages = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "event"
        text = error["msg"].removeprefix("Value error, ")
        messages.append(f"{where}: {text}")
    return messages


class RenderedMessage(_Model):
    v: int = 1
    event: LeadEvent
    subject: str
    html: str | None = None
    text: str
    headers: dict[str, str] = Field(default_factory=dict)
    message_id: str
    unsubscribe_url: str | None = None


class RoutedMessage(_Model):
    v: int = 1
    message: RenderedMessage
    account: str
    route: str
    from_addr: str
    from_name: str | None = None
    reply_to: str | None = None
    envelope_from: str
    attempt: int = 1
    throttled: int = 0
    first_attempt_at: float
    excluded_accounts: list[str] = Field(default_factory=list)

    @property
    def event(self) -> LeadEvent:
        return self.message.event


class SendReply(_Model):
    """What the server said, or why we never got an answer."""

    v: int = 1
    account: str
    code: int | None = None
    enhanced: str | None = None
    text: str = ""
    elapsed: float = 0.0
    error: TransportError | None = None
    from_ledger: bool = False

    @property
    def accepted(self) -> bool:
        return self.error is None and self.code is not None and 200 <= self.code < 300


class Verdict(_Model):
    """Classify's output: recipient outcome and account signal kept apart."""

    v: int = 1
    event: RecipientEvent
    permanent: bool = False
    reason: str = "undefined"
    code: int | None = None
    enhanced: str | None = None
    text: str = ""
    account_signal: AccountSignal = AccountSignal.OK
    retry_after: float | None = None

    @property
    def hard(self) -> bool:
        return self.event == RecipientEvent.BOUNCED and is_hard_bounce(self.reason, self.code)


class DeliveryEvent(_Model):
    """A status change reported after sending: provider webhook, bounce mail, reply, click."""

    v: int = 1
    event: RecipientEvent
    tenant: str = "default"
    event_id: str | None = None
    message_id: str | None = None
    recipient: str | None = None
    provider: str | None = None
    reason: str | None = None
    permanent: bool = False
    status: str | None = None
    smtp_reply: str | None = None
    occurred_at: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    raw: Any = None


class RouteRequest(_Model):
    """What the route stage receives: a rendered message, first time or again after a failure."""

    v: int = 1
    message: RenderedMessage
    attempt: int = 1
    throttled: int = 0
    first_attempt_at: float | None = None
    excluded_accounts: list[str] = Field(default_factory=list)
    waiting_since: float | None = None  # when it first found no account of its tenant (for no_account)


class SendResult(_Model):
    """What the classify stage receives: the routed message and the server's reply."""

    v: int = 1
    routed: RoutedMessage
    reply: SendReply
