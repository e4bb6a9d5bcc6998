"""route: campaign/list → account (first matching route wins, default otherwise).

A recipient on the suppression list ends `suppressed` here and is never sent. Provider quirks
(`mailpipe_prepare_message`) are applied once the account is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RouteConfig
from ..context import StageContext
from ..models import RecipientEvent, RoutedMessage, RouteRequest
from ..rotation import choose
from ..status import Transition
from .batch import Forward

NO_ACCOUNT_WAIT = 30.0


@dataclass
class Decision:
    routed: RoutedMessage | None = None
    suppressed_reason: str | None = None
    wait: float = 0.0


def find_route(routes: list[RouteConfig], campaign: str | None, list_name: str | None) -> RouteConfig | None:
    return next((r for r in routes if r.match.matches(campaign, list_name)), None)


def route(request: RouteRequest, ctx: StageContext, *, suppressed: str | None, paused: dict[str, bool]) -> Decision:
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
        return Decision(wait=NO_ACCOUNT_WAIT)
    weights = {a.name: a.weight for a in config.accounts}
    name = choose(ctx.redis, matched, candidates, weights=weights, now=ctx.clock(), timezone=config.rate_limit.timezone)
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
    paused = ctx.accounts_state.paused([a.name for a in ctx.config.accounts])
    for tenant, batch in by_tenant.items():
        found = ctx.suppression.lookup(tenant, [r.message.event.to for r in batch])
        waiting: list[str] = []
        for request, suppression in zip(batch, found, strict=True):
            event = request.message.event
            decision = route(request, ctx, suppressed=suppression.reason if suppression else None, paused=paused)
            if decision.suppressed_reason:
                transitions.append(
                    Transition(tenant, event.event_id, RecipientEvent.SUPPRESSED, {"stage": "route", "reason": decision.suppressed_reason, "route": _route_label(ctx, request)})
                )
            elif decision.routed:
                forwards.append(Forward("rate_limit", decision.routed.to_json()))
            else:
                waiting.append(event.event_id)
                forwards.append(Forward("route", request.to_json(), decision.wait))
        ctx.status.expect_progress(tenant, waiting, ctx.clock() + NO_ACCOUNT_WAIT)
    ctx.status.record(transitions)
    return forwards


def decode(raw: str) -> RouteRequest:
    return RouteRequest.model_validate_json(raw)


def _route_label(ctx: StageContext, request: RouteRequest) -> str:
    event = request.message.event
    matched = find_route(ctx.config.routes, event.campaign, event.list_name)
    return matched.label if matched else "default"
