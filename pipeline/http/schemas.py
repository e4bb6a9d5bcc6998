"""Response bodies of the HTTP API, as they appear in docs/openapi.json."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str | list[Any]


class ItemErrorOut(BaseModel):
    index: int = Field(description="position of the event in the request (0 for a single event)")
    event_id: str | None = None
    errors: list[str] = Field(description="one line per problem, naming the field")


class IngestResult(BaseModel):
    accepted: list[str] = Field(default_factory=list, description="event_ids accepted now")
    duplicates: list[str] = Field(default_factory=list, description="event_ids already known: not sent again")
    errors: list[ItemErrorOut] = Field(default_factory=list)


class EventStatusOut(BaseModel):
    event_id: str
    tenant: str
    state: str = Field(description="the latest state")
    outcome: str | None = Field(description="the final outcome, once there is one")
    created: float
    updated: float
    history: list[dict[str, Any]]


class WebhookResult(BaseModel):
    received: int = Field(description="delivery events in the request")
    applied: int = Field(description="events matched to one of ours and recorded")
    unmatched: int
    subscription: str | None = Field(default=None, description="SNS SubscriptionConfirmation: confirmed or pending")


class Health(BaseModel):
    ok: bool
    redis: bool
    workers: int | None = Field(description="worker processes with a heartbeat inside the broker's timeout; None when unknown")
