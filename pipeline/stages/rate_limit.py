"""rate_limit: give each message its own send slot on its scopes; wait by delay, never by sleep.

A message whose account became unavailable (paused, unhealthy, at a cap) goes back to route to
pick another account or wait there. A message whose slot lies beyond the limiter's horizon comes
back here shortly before its turn. Every other message goes to send, delayed until its slot.
"""

from __future__ import annotations

from collections import Counter

import structlog

from pipeline.context import StageContext
from pipeline.limits.quota import Scope, read_usage, scopes_for
from pipeline.limits.ratelimit import Slot
from pipeline.models import RoutedMessage, RouteRequest
from pipeline.observe import metrics
from pipeline.registry.refs import split_ref
from pipeline.stages.batch import INFRASTRUCTURE_ERRORS, Forward, Handled, each

log = structlog.get_logger("mailpipe.rate_limit")
STAGE = "rate_limit"


def back_to_route(message: RoutedMessage, delay: float = 0.0) -> Forward:
    """The message chooses its account again; attempt and throttle counts are kept."""
    request = RouteRequest(
        message=message.message,
        attempt=message.attempt,
        throttled=message.throttled,
        first_attempt_at=message.first_attempt_at,
        excluded_accounts=message.excluded_accounts,
    )
    return Forward("route", request.to_json(), delay)


def handle(messages: list[RoutedMessage], ctx: StageContext) -> Handled:
    handled = Handled()
    now = ctx.clock()
    ctx.registry.prefetch(split_ref(m.account)[0] for m in messages)
    # An account removed or paused since route chose it sends this message back to route.
    known = {ref: found for ref in {m.account for m in messages} if (found := ctx.registry.account(ref)) is not None}
    names = sorted(ref for ref, found in known.items() if found.usable)
    usage = read_usage(ctx.redis, [known[n].resolved for n in names], ctx.config.rate_limit, now)
    forwards: list[Forward] = []
    ready: list[RoutedMessage] = []
    rerouted: Counter[str] = Counter()
    for message in messages:
        if message.account in usage and usage[message.account].available:
            ready.append(message)
        else:
            rerouted[message.account] += 1
            forwards.append(back_to_route(message))
    scoped = each(STAGE, ready, lambda m: scopes_for(ctx.account(m.account), m.event.to, ctx.config.rate_limit), handled)
    ready, slots = reserve(scoped, now, ctx, handled)
    deferred: dict[tuple[str, float], list[str]] = {}
    for message, slot in zip(ready, slots, strict=True):
        metrics.limiter_wait(message.account, slot.delay)
        if slot.reserved:
            forwards.append(Forward("send", message.to_json(), slot.delay))
        else:
            forwards.append(Forward("rate_limit", message.to_json(), slot.delay))
            deferred.setdefault((message.event.tenant, now + slot.delay), []).append(message.event.event_id)
    for (tenant, due), event_ids in deferred.items():
        ctx.status.expect_progress(tenant, event_ids, due)
    if rerouted or deferred:
        log.debug(
            "rate_limit_wait",
            stage="rate_limit",
            rerouted=dict(rerouted),
            deferred=sum(len(v) for v in deferred.values()),
        )
    handled.forwards += forwards
    return handled


def reserve(
    scoped: list[tuple[RoutedMessage, list[Scope]]], now: float, ctx: StageContext, handled: Handled
) -> tuple[list[RoutedMessage], list[Slot]]:
    """One slot per message, all in one script call. Should Redis refuse that call (an error on one
    message's keys), each message asks again alone, so only the one whose keys are bad fails; a
    slot the refused call had already taken for another message goes unused (it only spaces the
    next messages a little more)."""
    headroom = ctx.config.rate_limit.headroom
    try:
        return [m for m, _ in scoped], ctx.limiter.reserve_slots([s for _, s in scoped], now, headroom=headroom)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        log.warning("rate_limit_reserve_refused", stage=STAGE, emails=len(scoped), error=f"{type(exc).__name__}: {exc}")
    messages: list[RoutedMessage] = []
    slots: list[Slot] = []
    for message, scopes in scoped:
        try:
            slots += ctx.limiter.reserve_slots([scopes], now, headroom=headroom)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            handled.fail(STAGE, message, exc)
            continue
        messages.append(message)
    return messages, slots


def decode(raw: str) -> RoutedMessage:
    return RoutedMessage.from_stage(raw)
