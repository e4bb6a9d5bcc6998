"""rate_limit: give each message its own send slot on its account; wait by delay, never by sleep."""

from __future__ import annotations

from ..context import StageContext
from ..models import RoutedMessage
from .batch import Forward


def handle(messages: list[RoutedMessage], ctx: StageContext) -> list[Forward]:
    by_account: dict[str, list[RoutedMessage]] = {}
    for message in messages:
        by_account.setdefault(message.account, []).append(message)
    now = ctx.clock()
    forwards: list[Forward] = []
    for name, batch in by_account.items():
        delays = ctx.limiter.reserve(ctx.account(name), len(batch), now)
        forwards.extend(Forward("send", m.to_json(), d) for m, d in zip(batch, delays, strict=True))
    return forwards


def decode(raw: str) -> RoutedMessage:
    return RoutedMessage.model_validate_json(raw)
