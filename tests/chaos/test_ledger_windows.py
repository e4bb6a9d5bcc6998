"""The send ledger's windows, one by one, against real Redis and a real SMTP server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from pipeline.context import StageContext
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, SendResult
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.smtp.pool import Superseded
from pipeline.stages.send import SendRuntime, send
from pipeline.state.ledger import Claim, SendLedger
from pipeline.state.status import StatusStore, Transition

pytestmark = pytest.mark.chaos
LEASE = 0.3


def routed(event_id: str) -> RoutedMessage:
    event = LeadEvent.model_validate({"event_id": event_id, "to": "lead@receiver.example", "subject": "s", "text": "t"})
    message = RenderedMessage(event=event, subject="Subject", text="Body\n", message_id=f"<{event_id}@sender.example>")
    return RoutedMessage(
        message=message,
        account="alpha",
        route="default",
        from_addr="alpha@sender.example",
        envelope_from="alpha@sender.example",
        first_attempt_at=time.time(),
    )


def run(ctx: StageContext, policy: str, scenario: Callable[[SendRuntime, SendLedger], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        runtime = SendRuntime(ctx)
        runtime._ledger = SendLedger(aioredis.Redis.from_url(ctx.config.redis_url), lease=LEASE, policy=policy)
        try:
            return await scenario(runtime, runtime.ledger)
        finally:
            await runtime.pools.close()

    return asyncio.run(go())


def test_a_copy_arriving_while_an_attempt_holds_the_lease_waits_instead_of_sending(
    ctx: StageContext, smtp_server: DevSMTPServer
) -> None:
    async def scenario(runtime: SendRuntime, ledger: SendLedger) -> Any:
        await ledger.claim("default", "busy")
        return await send(routed("busy"), runtime)

    forward, transition = run(ctx, "resend", scenario)
    assert forward.stage == "send" and forward.delay > 0 and transition is None
    assert smtp_server.snapshot() == []


def test_an_attempt_abandoned_before_data_is_resent_without_counting_as_ambiguous(
    ctx: StageContext, smtp_server: DevSMTPServer, redis_client: redis.Redis
) -> None:
    async def scenario(runtime: SendRuntime, ledger: SendLedger) -> Any:
        await ledger.claim("default", "early")  # a worker died during MAIL/RCPT
        await asyncio.sleep(LEASE + 0.1)
        return await send(routed("early"), runtime)

    forward, _ = run(ctx, "skip", scenario)
    assert SendResult.model_validate_json(forward.item).reply.code == 250
    assert len(smtp_server.snapshot()) == 1
    assert redis_client.hget("mailpipe:default:ledger:early", "ambiguous") is None


def test_an_attempt_that_died_after_data_is_ambiguous_and_resent_under_the_resend_policy(
    ctx: StageContext, smtp_server: DevSMTPServer, redis_client: redis.Redis
) -> None:
    async def scenario(runtime: SendRuntime, ledger: SendLedger) -> Any:
        dead = await ledger.claim("default", "late")
        assert await ledger.commit("default", "late", dead.token)  # then the worker died
        await asyncio.sleep(LEASE + 0.1)
        return await send(routed("late"), runtime)

    forward, _ = run(ctx, "resend", scenario)
    reply = SendResult.model_validate_json(forward.item).reply
    assert reply.code == 250 and not reply.from_ledger
    assert len(smtp_server.snapshot()) == 1
    assert redis_client.hget("mailpipe:default:ledger:late", "ambiguous") == b"1"


def test_an_attempt_that_died_after_data_is_not_resent_under_the_skip_policy_ever(
    ctx: StageContext, smtp_server: DevSMTPServer, redis_client: redis.Redis
) -> None:
    async def scenario(runtime: SendRuntime, ledger: SendLedger) -> Any:
        dead = await ledger.claim("default", "late")
        await ledger.commit("default", "late", dead.token)
        await asyncio.sleep(LEASE + 0.1)
        first = await send(routed("late"), runtime)
        again = await send(routed("late"), runtime)
        return first, again

    (first, _), (again, _) = run(ctx, "skip", scenario)
    for forward in (first, again):
        reply = SendResult.model_validate_json(forward.item).reply
        assert forward.stage == "classify" and reply.from_ledger and "not resent" in reply.text
    assert smtp_server.snapshot() == []
    assert redis_client.hget("mailpipe:default:ledger:late", "ambiguous") == b"1"


def test_a_slow_attempt_that_lost_its_claim_aborts_before_data(ctx: StageContext, smtp_server: DevSMTPServer) -> None:
    async def scenario(runtime: SendRuntime, ledger: SendLedger) -> Any:
        slow = await ledger.claim("default", "slow")
        await asyncio.sleep(LEASE + 0.1)
        newer = await ledger.claim("default", "slow")
        assert newer.claim == Claim.CLAIMED
        pool = runtime.pools.get(ctx.account("alpha"))

        async def gate() -> bool:
            return await ledger.commit("default", "slow", slow.token)

        with pytest.raises(Superseded):
            await pool.send("alpha@sender.example", "lead@receiver.example", b"Subject: x\r\n\r\nx\r\n", before_data=gate)
        after = await pool.send("alpha@sender.example", "lead@receiver.example", b"Subject: y\r\n\r\ny\r\n")
        return after, len(pool.idle)

    after, idle = run(ctx, "resend", scenario)
    assert after.accepted and idle == 1  # the aborted session was reset and reused
    assert [m.data.startswith(b"Subject: y") for m in smtp_server.snapshot()] == [True]


def test_a_late_copy_of_an_event_with_a_final_outcome_is_never_sent(
    ctx: StageContext, smtp_server: DevSMTPServer, redis_client: redis.Redis
) -> None:
    status = StatusStore(redis_client)
    message = routed("bounced")
    status.accept([message.event])
    status.record([Transition("default", "bounced", "bounced", {"code": 550})])

    async def scenario(runtime: SendRuntime, ledger: SendLedger) -> Any:
        return await send(message, runtime)

    assert run(ctx, "resend", scenario) == (None, None)
    assert smtp_server.snapshot() == []
