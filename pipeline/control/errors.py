"""What a control-plane operation can refuse; the HTTP layer maps each to a problem-details status."""

from __future__ import annotations

from typing import Any

from pipeline.errors import MailpipeError


class ControlError(MailpipeError):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}


class NotFound(ControlError):
    """Also what a caller gets for another tenant's resource: no existence leak."""

    status = 404
    title = "Not found"


class Forbidden(ControlError):
    status = 403
    title = "Forbidden"


class Unauthorized(ControlError):
    status = 401
    title = "Unauthorized"


class Conflict(ControlError):
    status = 409
    title = "Conflict"


class Invalid(ControlError):
    status = 422
    title = "Invalid input"


class VerificationFailed(Invalid):
    title = "Connection verification failed"


class TooManyRequests(ControlError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotConfigured(ControlError):
    status = 503
    title = "Not configured"
