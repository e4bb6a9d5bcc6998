"""route: campaign/list → account (first matching route wins, default otherwise).

A recipient on the suppression list ends `suppressed` here and is never sent. Provider quirks
(`mailpipe_prepare_message`) are applied once the account is known. Accounts that are paused,
unhealthy or at a cap are skipped (rotation.choose); when none of the pool is available the
message waits — re-enqueued here until the earliest reset (plus jitter) — it is never failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.config import RouteConfig
from pipeline.context import StageContext
from pipeline.limits.quota import AccountUsage, read_usage
from pipeline.limits.rotation import choose, earliest_ready
from pipeline.models import RecipientEvent, RoutedMessage, RouteRequest
from pipeline.stages.batch import Forward
from pipeline.state.status import Transition


@dataclass
class Decision:
    routed: RoutedMessage | None = None
    suppressed_reason: str | None = None
    wait: float = 0.0


def find_route(routes: list[RouteConfig], campaign: str | None, list_name: str | None) -> RouteConfig | None:
    return next((r for r in routes if r.match.matches(campaign, list_name)), None)


def route(
    request: RouteRequest,
    ctx: StageContext,
    *,
    suppressed: str | None,
    paused: dict[str, bool],
    usage: dict[str, AccountUsage] | None = None,
    assigned: dict[str, int] | None = None,
) -> Decision:
    event = request.message.event
    if suppressed:
        return Decision(suppressed_reason=suppressed)
    config = ctx.config
    matched = find_route(config.routes, event.campaign, event.list_name)
    pool = matched.accounts if matched else [config.default.account]
    candidates = [a for a in pool if not paused.get(a) and a not in request.excluded_accounts]
    if not candidates and request.excluded_accounts:
        # Every other account was tried: fall back to any unpaused account of the pool.
        candidates = [a for a in pool if not paused.get(a)]
    if not candidates:
        return Decision(wait=config.rate_limit.paused_recheck)
    now = ctx.clock()
    if usage is None:
        usage = read_usage(ctx.redis, [ctx.account(a) for a in pool], config.rate_limit, now)
    weights = {a.name: a.weight for a in config.accounts}
    name = choose(ctx.redis, matched, candidates, usage=usage, weights=weights, assigned=assigned)
    if name is None:
        return Decision(wait=_wait_for(candidates, usage, ctx, now))
    account = config.account(name)
    routed = RoutedMessage(
        message=request.message,
        account=name,
        route=matched.label if matched else "default",
        from_addr=account.from_email,
        from_name=account.from_name,
        reply_to=account.reply_to,
        envelope_from=account.envelope_from or account.from_email,
        attempt=request.attempt,
        throttled=request.throttled,
        first_attempt_at=request.first_attempt_at or ctx.clock(),
        excluded_accounts=request.excluded_accounts,
    )
    ctx.pm.hook.mailpipe_prepare_message(account=account, message=routed)
    return Decision(routed=routed)


def handle(requests: list[RouteRequest], ctx: StageContext) -> list[Forward]:
    forwards: list[Forward] = []
    transitions: list[Transition] = []
    by_tenant: dict[str, list[RouteRequest]] = {}
    for request in requests:
        by_tenant.setdefault(request.message.event.tenant, []).append(request)
    now = ctx.clock()
    usage = read_usage(ctx.redis, list(ctx.resolved.values()), ctx.config.rate_limit, now)
    paused = {name: u.paused for name, u in usage.items()}
    assigned: dict[str, int] = {}
    for tenant, batch in by_tenant.items():
        found = ctx.suppression.lookup(tenant, [r.message.event.to for r in batch], [r.message.event.list_name for r in batch])
        waiting: dict[float, list[str]] = {}
        for request, suppression in zip(batch, found, strict=True):
            event = request.message.event
            reason = suppression.reason if suppression else None
            decision = route(request, ctx, suppressed=reason, paused=paused, usage=usage, assigned=assigned)
            if decision.suppressed_reason:
                transitions.append(
                    Transition(
                        tenant,
                        event.event_id,
                        RecipientEvent.SUPPRESSED,
                        {"stage": "route", "reason": decision.suppressed_reason, "route": _route_label(ctx, request)},
                    )
                )
            elif decision.routed:
                forwards.append(Forward("rate_limit", decision.routed.to_json()))
            else:
                waiting.setdefault(now + decision.wait, []).append(event.event_id)
                forwards.append(Forward("route", request.to_json(), decision.wait))
        for due, event_ids in waiting.items():
            ctx.status.expect_progress(tenant, event_ids, due)
    ctx.status.record(transitions)
    return forwards


def _wait_for(candidates: list[str], usage: dict[str, AccountUsage], ctx: StageContext, now: float) -> float:
    """Until the earliest cap reset; paused or unhealthy accounts are re-checked every paused_recheck."""
    limits = ctx.config.rate_limit
    waits = [limits.paused_recheck] if any(usage[c].next_ready is None for c in candidates if c in usage) else []
    ready = earliest_ready(candidates, usage)
    if ready is not None:
        waits.append(max(0.0, ready - now))
    wait = min(waits, default=limits.paused_recheck)
    return wait + (random.uniform(0, limits.jitter_ms / 1000) if limits.jitter_ms else 0.0)


def decode(raw: str) -> RouteRequest:
    return RouteRequest.from_stage(raw)


def _route_label(ctx: StageContext, request: RouteRequest) -> str:
    event = request.message.event
    matched = find_route(ctx.config.routes, event.campaign, event.list_name)
    return matched.label if matched else "default"
