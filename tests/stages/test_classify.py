"""classify as a plain function: account signals first, then the recipient outcome."""

from __future__ import annotations

import time

from pipeline.context import StageContext
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, SendReply, SendResult, TransportError
from pipeline.stages.classify import apply_signal, decide, handle
from pipeline.state import keys


def result(
    code: int | None,
    text: str,
    *,
    attempt: int = 1,
    error: TransportError | None = None,
    account: str = "alpha",
    first_attempt_at: float | None = None,
) -> SendResult:
    event = LeadEvent.model_validate({"event_id": "c1", "to": "lead@receiver.example", "subject": "s", "text": "t"})
    message = RenderedMessage(event=event, subject="s", text="t", message_id="<c1@x>")
    routed = RoutedMessage(
        message=message,
        account=account,
        route="nordics",
        from_addr="a@sender.example",
        envelope_from="a@sender.example",
        attempt=attempt,
        first_attempt_at=first_attempt_at or time.time(),
    )
    enhanced = text.split()[0] if text[:1].isdigit() else None
    return SendResult(routed=routed, reply=SendReply(account=account, code=code, enhanced=enhanced, text=text, error=error))


def test_a_2xx_reply_is_final_sent(ctx: StageContext) -> None:
    decision = decide(result(250, "2.0.0 OK"), ctx)
    assert decision.transition.state == "sent" and decision.forward is None


def test_a_4xx_reply_is_retried_with_growing_back_off_then_failed(ctx: StageContext) -> None:
    first = decide(result(451, "4.3.0 try later", attempt=1), ctx)
    third = decide(result(451, "4.3.0 try later", attempt=3), ctx)
    last = decide(result(451, "4.3.0 try later", attempt=4), ctx)
    assert first.transition.state == "deferred" and first.forward and first.forward.stage == "rate_limit"
    assert third.forward and first.forward and third.forward.delay > 2 * first.forward.delay
    assert '"attempt":2' in first.forward.item
    assert last.transition.state == "failed" and last.transition.entry["gave_up"] == "max_attempts"


def test_an_event_older_than_max_age_is_failed_not_retried(ctx: StageContext) -> None:
    decision = decide(result(451, "4.3.0 later", first_attempt_at=time.time() - 10 * 86400), ctx)
    assert decision.transition.state == "failed" and decision.transition.entry["gave_up"] == "max_age"


def test_user_unknown_is_a_hard_bounce_and_reputation_block_is_soft(ctx: StageContext) -> None:
    hard = decide(result(550, "5.1.1 user unknown"), ctx)
    soft = decide(result(550, "5.7.1 rejected: client host blocked by reputation list"), ctx)
    assert hard.transition.state == soft.transition.state == "bounced"
    assert hard.suppress_hard and not soft.suppress_hard and soft.soft_bounce


def test_throttling_slows_the_account_and_retries_without_counting_an_attempt(ctx: StageContext) -> None:
    throttled = result(454, "Throttling failure: Maximum sending rate exceeded", attempt=2)
    decision = decide(throttled, ctx)
    assert decision.transition.state == "throttled" and decision.forward and decision.forward.stage == "rate_limit"
    assert '"attempt":2' in decision.forward.item and '"throttled":1' in decision.forward.item
    state = keys.account_state("default", "alpha")
    assert ctx.redis.hget(state, "rate_factor") is None  # deciding writes nothing
    apply_signal(throttled, decision, ctx)
    factor = ctx.redis.hget(state, "rate_factor")
    assert factor is not None and float(factor) == 0.5, factor  # halved, from the configured 1.0
    assert int(ctx.redis.hget(state, "throttles") or 0) == 1
    assert decision.forward.delay >= 1.0 and decision.transition.entry["next_in"] == round(decision.forward.delay, 3)


def test_an_auth_failure_pauses_the_account_and_reroutes_the_message(ctx: StageContext) -> None:
    refused = result(535, "5.7.8 Authentication credentials invalid", error=TransportError.AUTH)
    decision = decide(refused, ctx)
    assert decision.transition.state == "rerouted" and decision.forward and decision.forward.stage == "route"
    assert '"excluded_accounts":["alpha"]' in decision.forward.item
    assert ctx.accounts_state.paused(["alpha"]) == {"alpha": False}  # deciding writes nothing
    apply_signal(refused, decision, ctx)
    assert ctx.accounts_state.paused(["alpha"]) == {"alpha": True}
    assert ctx.accounts_state.health("alpha")["health"] == "auth_failed"


def test_a_connection_failure_is_retried(ctx: StageContext) -> None:
    decision = decide(result(None, "connect failed", error=TransportError.CONNECT), ctx)
    assert decision.transition.state == "deferred" and decision.forward is not None


def test_handle_suppresses_hard_bounces_once_and_records_one_final_outcome(ctx: StageContext) -> None:
    ctx.status.accept([LeadEvent.model_validate({"event_id": "c1", "to": "lead@receiver.example", "subject": "s", "text": "t"})])
    handle([result(550, "5.1.1 no such user")], ctx)
    handle([result(250, "2.0.0 OK")], ctx)  # a redelivered duplicate cannot change the outcome
    status = ctx.status.get("default", "c1")
    assert status is not None and status.outcome == "bounced"
    assert ctx.suppression.lookup("default", ["lead@receiver.example"])[0] is not None
