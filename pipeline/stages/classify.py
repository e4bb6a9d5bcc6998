"""classify: the server's reply → a Verdict, then the message's next step.

Account signals are decided first (throttled, auth_failed, quota_exhausted): they slow or pause
the account and never count against the recipient. Then the recipient outcome: sent → final;
bounced → final (suppressed only when hard); deferred → retry with back-off until the attempt or
age limit, then failed.

Each reply's effects are worked out first (`decide` writes nothing), then applied once, item by
item: account signal, then one status write for the batch (which says whether an outcome is the
first), then suppression, metrics and the `mailpipe_delivery_event` observers. An error on one
email fails that email alone; an observer's error is logged, counted and dead-lettered, and the
email keeps its outcome.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import structlog

from pipeline.context import StageContext
from pipeline.inbox.index import MessageIndex
from pipeline.limits.account_state import Health
from pipeline.limits.throttle import record_throttle
from pipeline.models import AccountSignal, DeliveryEvent, RecipientEvent, RouteRequest, SendResult, Verdict
from pipeline.observe import journey, metrics
from pipeline.registry.refs import split_ref
from pipeline.stages.batch import INFRASTRUCTURE_ERRORS, Forward, Handled, call_observers
from pipeline.state.status import Transition

MAX_THROTTLE_RETRIES = 1000
STAGE = "classify"
DELIVERY_HOOK = "mailpipe_delivery_event"


@dataclass
class Decision:
    verdict: Verdict
    transition: Transition
    forward: Forward | None = None
    suppress_hard: bool = False
    soft_bounce: bool = False
    effects: list[str] = field(default_factory=list)
    pause: str | None = None  # an auth failure: pause the account, with this reason
    throttle: bool = False  # a throttle or quota signal: back the account off; that sets the retry's delay


def verdict_for(result: SendResult, ctx: StageContext) -> Verdict:
    found = ctx.registry.account(result.reply.account)  # None once removed: the rules still classify the reply
    account = found.config if found is not None else None
    verdict: Verdict | None = ctx.pm.hook.mailpipe_classify_reply(account=account, reply=result.reply)
    if verdict is None:  # only when every plugin, fallback included, was blocked
        ok = result.reply.accepted
        verdict = Verdict(event=RecipientEvent.SENT if ok else RecipientEvent.DEFERRED, reason="undefined")
    return verdict


def provider_of(ref: str, ctx: StageContext) -> str:
    found = ctx.registry.account(ref)
    return found.config.provider if found is not None else "unknown"


def backoff(attempt: int, ctx: StageContext) -> float:
    retry = ctx.config.retry
    delay: float = min(retry.max_delay, retry.base_delay * (2 ** max(0, attempt - 1)))
    return delay * (1 + random.uniform(-retry.jitter, retry.jitter))


def decide(result: SendResult, ctx: StageContext) -> Decision:
    """What the reply means and what follows from it; nothing is written (`apply_signal`, `handle` do)."""
    routed, reply = result.routed, result.reply
    event = routed.event
    structlog.contextvars.bind_contextvars(event_id=event.event_id, account=routed.account, attempt=routed.attempt)
    verdict = verdict_for(result, ctx)
    entry = {
        "stage": "classify",
        "account": routed.account,
        "route": routed.route,
        "attempt": routed.attempt,
        "sender": routed.from_addr,
        "message_id": routed.message.message_id,
        "code": reply.code,
        "enhanced": reply.enhanced or verdict.enhanced,
        "reply": reply.text[:500],
        "reason": verdict.reason,
        "signal": verdict.account_signal.value,
    }
    if reply.error:
        entry["error"] = reply.error.value

    def transition(state: str) -> Transition:
        return Transition(event.tenant, event.event_id, state, entry)

    if verdict.event == RecipientEvent.SENT:
        return Decision(verdict, transition(RecipientEvent.SENT))
    age = ctx.clock() - routed.first_attempt_at
    too_old = age > ctx.config.retry.max_age
    signal = verdict.account_signal
    if signal == AccountSignal.AUTH_FAILED:
        # basic_auth_disabled names its own fix (switch the mailbox to OAuth); a new password would not help.
        label = "basic_auth_disabled" if verdict.reason == "basic_auth_disabled" else "auth failed"
        request = RouteRequest(
            message=routed.message,
            attempt=routed.attempt,
            throttled=routed.throttled,
            first_attempt_at=routed.first_attempt_at,
            excluded_accounts=sorted({*routed.excluded_accounts, routed.account}),
        )
        entry["next"] = "reroute"
        return Decision(
            verdict,
            transition("rerouted"),
            Forward("route", request.to_json()),
            effects=["paused"],
            pause=f"{label}: {reply.text[:200]}",
        )
    if (
        signal in (AccountSignal.THROTTLED, AccountSignal.QUOTA_EXHAUSTED)
        and not too_old
        and routed.throttled < MAX_THROTTLE_RETRIES
    ):
        again = routed.model_copy(update={"throttled": routed.throttled + 1})
        return Decision(verdict, transition("throttled"), Forward("rate_limit", again.to_json()), throttle=True)
    if verdict.event == RecipientEvent.BOUNCED:
        decision = Decision(verdict, transition(RecipientEvent.BOUNCED))
        decision.suppress_hard = verdict.hard
        decision.soft_bounce = not verdict.hard
        return decision
    if verdict.event in (RecipientEvent.REJECTED, RecipientEvent.FAILED, RecipientEvent.SUPPRESSED):
        return Decision(verdict, transition(verdict.event))
    if routed.attempt >= ctx.config.retry.max_attempts or too_old:
        entry["gave_up"] = "max_age" if too_old else "max_attempts"
        return Decision(verdict, transition(RecipientEvent.FAILED))
    delay = backoff(routed.attempt, ctx)
    again = routed.model_copy(update={"attempt": routed.attempt + 1})
    entry["next_in"] = round(delay, 3)
    return Decision(verdict, transition(RecipientEvent.DEFERRED), Forward("rate_limit", again.to_json(), delay))


def apply_signal(result: SendResult, decision: Decision, ctx: StageContext) -> None:
    """The account's side of the reply: an auth failure pauses it; a throttle backs it off, and
    the limiter's answer is how long this message waits before rate_limit again."""
    routed, verdict = result.routed, decision.verdict
    if decision.pause is not None:
        ctx.accounts_state.pause(routed.account, decision.pause, Health.AUTH_FAILED)
    if decision.throttle and decision.forward is not None:
        delay = record_throttle(
            ctx.redis,
            routed.account,
            verdict.retry_after,
            now=ctx.clock(),
            timezone=ctx.config.rate_limit.timezone,
            quota=verdict.account_signal == AccountSignal.QUOTA_EXHAUSTED,
        )
        decision.transition.entry["next_in"] = round(delay, 3)
        decision.forward.delay = delay


def handle(results: list[SendResult], ctx: StageContext) -> Handled:
    handled = Handled()
    ctx.registry.prefetch(split_ref(r.reply.account)[0] for r in results)
    decided: list[tuple[SendResult, Decision]] = []
    for result in results:
        try:
            decision = decide(result, ctx)
            apply_signal(result, decision, ctx)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            handled.fail(STAGE, result, exc)
            continue
        decided.append((result, decision))
    sent = [r.routed for r, d in decided if d.transition.state == RecipientEvent.SENT]
    MessageIndex(ctx.redis, ttl=ctx.config.retention.feedback_window).remember(
        [(s.event.tenant, s.message.message_id, s.event.event_id) for s in sent]
    )
    refused: dict[int, Exception] = {}
    applied = ctx.status.record([d.transition for _, d in decided], refused=refused)
    for index, ((result, decision), first_time) in enumerate(zip(decided, applied, strict=True)):
        if index in refused:  # Redis refused this email's status write: it fails alone
            handled.fail(STAGE, result, refused[index])
            continue
        try:
            errors = settle_one(result, decision, first_time, ctx)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # its status is written: a final outcome stands, a next step is lost
            handled.fail(STAGE, result, exc, state=None if decision.transition.final else RecipientEvent.FAILED)
            continue
        if decision.forward:
            handled.forwards.append(decision.forward)
        if errors:
            handled.fail(STAGE, result, ObserverError(DELIVERY_HOOK, errors), state=None)
    return handled


class ObserverError(Exception):
    """What the observer plugins raised for one email (their errors never reach the batch)."""

    def __init__(self, hook: str, errors: list[str]) -> None:
        super().__init__(f"{hook}: {'; '.join(errors)}")


def settle_one(result: SendResult, decision: Decision, first_time: bool, ctx: StageContext) -> list[str]:
    """One email's effects once its status is written: suppression, metrics, observers (their errors returned)."""
    event = result.routed.event
    suppression = ctx.config.suppression
    if decision.suppress_hard:
        ctx.suppression.add(event.tenant, event.to, decision.verdict.reason, source="bounce")
    elif decision.soft_bounce and first_time:
        ctx.suppression.soft_bounce(
            event.tenant,
            event.to,
            limit=suppression.soft_bounce_limit,
            window=suppression.soft_bounce_window,
            reason=decision.verdict.reason,
        )
    observe(result, decision, first_time, ctx)
    if not (first_time and decision.transition.final):
        return []
    return call_observers(
        ctx.pm,
        DELIVERY_HOOK,
        event=DeliveryEvent(
            event=decision.verdict.event
            if decision.verdict.event in (RecipientEvent.SENT, RecipientEvent.BOUNCED)
            else RecipientEvent(decision.transition.state),
            tenant=event.tenant,
            event_id=event.event_id,
            message_id=result.routed.message.message_id,
            recipient=event.to,
            provider=provider_of(result.routed.account, ctx),
            reason=decision.verdict.reason,
            permanent=decision.verdict.permanent,
            status=decision.verdict.enhanced,
            smtp_reply=result.reply.text[:500],
        ),
    )


def observe(result: SendResult, decision: Decision, first_time: bool, ctx: StageContext) -> None:
    """Metrics and the canonical line's outcome for one classified reply."""
    routed, verdict, state = result.routed, decision.verdict, decision.transition.state
    account = routed.account
    provider = provider_of(account, ctx)
    metrics.send_result(account, provider, state, verdict.reason)
    metrics.account_signal(account, provider, verdict.account_signal.value)
    if first_time and state == RecipientEvent.BOUNCED:
        metrics.bounce(provider, verdict.reason, hard=verdict.hard, account=account)
    if first_time and decision.transition.final:
        metrics.delivery_latency(state, ctx.clock() - routed.first_attempt_at)
    journey.note(routed.event.event_id, state, reason=verdict.reason, code=result.reply.code)


def decode(raw: str) -> SendResult:
    return SendResult.from_stage(raw)
