"""route: an event's tenant → one of its accounts (route, sender default, active account), or it waits.

Resolution, from the tenant's registry snapshot: the account the event names → the first route that
matches campaign/list/sender → the account that is the sender's default → the tenant's active
account → with `[tenants] fallback = "platform"` (or the tenant's own choice) the `default` tenant's
active account. A tenant with none of these waits `[tenants] no_account_wait`, then ends `failed`
with reason `no_account` — it never borrows another tenant's account.

A recipient on the suppression list ends `suppressed` here and is never sent. Within a campaign a
recipient's follow-ups are sticky to the mailbox that sent the first message (one thread, one inbox);
new recipients rotate. Accounts that are paused (by the tenant or after an auth failure), unhealthy or
at a cap are skipped (rotation.choose); when none of the pool is available the message waits —
re-enqueued here until the earliest reset (plus jitter) — it is never failed for that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass

from pipeline.config import RouteConfig
from pipeline.config.schema import StickyUnavailable, TenantFallback
from pipeline.context import StageContext
from pipeline.limits.quota import AccountUsage, read_usage
from pipeline.limits.rotation import choose, earliest_ready
from pipeline.models import RecipientEvent, RoutedMessage, RouteRequest
from pipeline.registry.refs import DEFAULT_TENANT, account_ref
from pipeline.registry.snapshot import Pool
from pipeline.stages.batch import INFRASTRUCTURE_ERRORS, Forward, Handled
from pipeline.state.status import Transition

NO_ACCOUNT = "no_account"


@dataclass
class Decision:
    routed: RoutedMessage | None = None
    suppressed_reason: str | None = None
    wait: float = 0.0
    failed_reason: str | None = None


def pool_for(request: RouteRequest, ctx: StageContext) -> Pool | None:
    """Where this event may go, by the resolution order above; None when its tenant has no account for it."""
    event = request.message.event
    snapshot = ctx.registry.tenant(event.tenant)
    if event.account is not None and event.account in snapshot.accounts:
        return Pool(event.tenant, (event.account,), None, f"account={event.account}")
    pool = snapshot.own_pool(event.campaign, event.list_name, event.sender)
    if pool is not None or event.tenant == DEFAULT_TENANT:
        return pool
    if ctx.config.tenants.fallback == TenantFallback.PLATFORM or snapshot.use_platform:
        platform = ctx.registry.tenant(DEFAULT_TENANT)
        if platform.active is not None and platform.active in platform.accounts:
            return Pool(DEFAULT_TENANT, (platform.active,), None, "platform")
    return None


def sticky_key(tenant: str, campaign: str, recipient: str) -> str:
    digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:24]  # no address in key names
    return f"mailpipe:{tenant}:sticky:{campaign}:{digest}"


def route(
    request: RouteRequest,
    ctx: StageContext,
    *,
    suppressed: str | None,
    paused: dict[str, bool],
    usage: dict[str, AccountUsage] | None = None,
    assigned: dict[str, int] | None = None,
    pool: Pool | None = None,
    sticky: str | None = None,
) -> Decision:
    if suppressed:
        return Decision(suppressed_reason=suppressed)
    pool = pool if pool is not None else pool_for(request, ctx)
    now = ctx.clock()
    if pool is None:
        waited = now - (request.waiting_since or now)
        if waited >= ctx.config.tenants.no_account_wait:
            return Decision(failed_reason=NO_ACCOUNT)
        return Decision(wait=min(ctx.config.rate_limit.paused_recheck, ctx.config.tenants.no_account_wait - waited) + 0.05)
    refs = pool.refs
    limits = ctx.config.rate_limit
    if sticky is not None and sticky in refs and ctx.registry.account(sticky) is not None:
        sticky_usage = (usage or {}).get(sticky)
        if not paused.get(sticky) and (sticky_usage is None or sticky_usage.available):
            refs = [sticky]
        elif ctx.config.tenants.sticky_unavailable == StickyUnavailable.WAIT:
            return Decision(wait=_wait_for([sticky], usage or {}, ctx, now))
    candidates = [a for a in refs if not paused.get(a) and a not in request.excluded_accounts]
    if not candidates and request.excluded_accounts:
        # Every other account was tried: fall back to any unpaused account of the pool.
        candidates = [a for a in refs if not paused.get(a)]
    if not candidates:
        return Decision(wait=limits.paused_recheck)
    if usage is None:
        usage = read_usage(ctx.redis, [ctx.account(a) for a in refs], limits, now)
    weights = {ref: found.config.weight for ref in refs if (found := ctx.registry.account(ref)) is not None}
    rotation_route = _qualified(pool.route, pool.tenant)
    ref = choose(ctx.redis, rotation_route, candidates, usage=usage, weights=weights, assigned=assigned)
    if ref is None:
        return Decision(wait=_wait_for(candidates, usage, ctx, now))
    account = ctx.sending_account(ref).config
    routed = RoutedMessage(
        message=request.message,
        account=ref,
        route=pool.label,
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


def _qualified(route: RouteConfig | None, tenant: str) -> RouteConfig | None:
    """Rotation counters are keyed by route label: give another tenant's route a label of its own."""
    if route is None or tenant == DEFAULT_TENANT:
        return route
    return route.model_copy(update={"name": account_ref(tenant, route.label)})


def handle(requests: list[RouteRequest], ctx: StageContext) -> Handled:
    handled = Handled()
    forwards = handled.forwards
    by_tenant: dict[str, list[RouteRequest]] = {}
    for request in requests:
        by_tenant.setdefault(request.message.event.tenant, []).append(request)
    now = ctx.clock()
    ctx.registry.prefetch([*by_tenant, DEFAULT_TENANT])
    pools = [pool_for(r, ctx) for r in requests]
    pool_of = {id(r): p for r, p in zip(requests, pools, strict=True)}
    refs = sorted({ref for p in pools if p is not None for ref in p.refs if ctx.registry.account(ref) is not None})
    usage = read_usage(ctx.redis, [ctx.account(ref) for ref in refs], ctx.config.rate_limit, now)
    for ref, standing in usage.items():
        account = ctx.registry.account(ref)
        if account is not None and not account.usable:  # paused by the tenant, or auth_failed
            usage[ref] = dataclasses.replace(standing, paused=True)
    paused = {name: u.paused for name, u in usage.items()}
    sticky = _sticky_reads(requests, pool_of, ctx)
    assigned: dict[str, int] = {}
    remember: dict[str, str] = {}
    replace_sticky: set[str | None] = set()
    suppressions = ctx.suppression.lookup_many(
        {t: ([r.message.event.to for r in b], [r.message.event.list_name for r in b]) for t, b in by_tenant.items()}
    )
    for tenant, batch in by_tenant.items():
        found = suppressions[tenant]
        waiting: dict[float, list[str]] = {}
        for request, suppression in zip(batch, found, strict=True):
            event = request.message.event
            reason = suppression.reason if suppression else None
            pool = pool_of[id(request)]
            key = sticky.get(id(request), (None, None))
            if key[1] is not None and key[1] in request.excluded_accounts:
                # This very message failed there (auth, connection) and was never sent from it:
                # the mailbox was remembered too early, so choose again and remember the new one.
                key = (key[0], None)
                replace_sticky.add(key[0])
            try:
                decision = route(
                    request,
                    ctx,
                    suppressed=reason,
                    paused=paused,
                    usage=usage,
                    assigned=assigned,
                    pool=pool,
                    sticky=key[1],
                )
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:  # a plugin's mailpipe_prepare_message raised, say: this email fails alone
                handled.fail("route", request, exc)
                continue
            label = pool.label if pool is not None else NO_ACCOUNT
            if decision.suppressed_reason:
                entry = {"stage": "route", "reason": decision.suppressed_reason, "route": label}
                outcome = Transition(tenant, event.event_id, RecipientEvent.SUPPRESSED, entry)
                handled.transitions.append((outcome, request.to_json()))
            elif decision.failed_reason:
                entry = {"stage": "route", "reason": decision.failed_reason, "route": label}
                outcome = Transition(tenant, event.event_id, RecipientEvent.FAILED, entry)
                handled.transitions.append((outcome, request.to_json()))
            elif decision.routed:
                if key[0] is not None and key[1] is None:
                    remember[key[0]] = decision.routed.account
                forwards.append(Forward("rate_limit", decision.routed.to_json()))
            else:
                waiting.setdefault(now + decision.wait, []).append(event.event_id)
                no_pool = pool is None and request.waiting_since is None
                again = request.model_copy(update={"waiting_since": now}) if no_pool else request
                forwards.append(Forward("route", again.to_json(), decision.wait))
        for due, event_ids in waiting.items():
            ctx.status.expect_progress(tenant, event_ids, due)
    if remember:
        ttl = int(ctx.config.tenants.sticky_days * 86400)
        pipe = ctx.redis.pipeline(transaction=False)
        for name, ref in remember.items():
            pipe.set(name, ref, ex=ttl, nx=name not in replace_sticky)
        pipe.execute()
    return handled


def _sticky_reads(
    requests: list[RouteRequest], pool_of: dict[int, Pool | None], ctx: StageContext
) -> dict[int, tuple[str, str | None]]:
    """(key, remembered account) for each campaign mail whose pool has a choice; one round trip."""
    wanted: dict[int, str] = {}
    for request in requests:
        event, pool = request.message.event, pool_of[id(request)]
        if event.campaign and event.account is None and pool is not None and len(pool.names) > 1:
            wanted[id(request)] = sticky_key(event.tenant, event.campaign, event.to)
    if not wanted:
        return {}
    values: list[bytes | None] = ctx.redis.mget(list(wanted.values()))  # type: ignore[assignment]
    return {rid: (name, v.decode() if v else None) for (rid, name), v in zip(wanted.items(), values, strict=True)}


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
