"""Mail whose account was removed (or paused by its tenant) since route chose it goes back to route, never fails."""

from __future__ import annotations

import asyncio
import json

from pipeline.context import StageContext
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, SendReply, SendResult
from pipeline.stages import classify, rate_limit, send
from pipeline.stages.batch import Handled


def routed_to(account: str, i: int = 1) -> RoutedMessage:
    event = LeadEvent.model_validate({"event_id": f"gone-{i}", "to": f"x{i}@receiver.example", "subject": "s", "text": "t"})
    message = RenderedMessage(event=event, subject="s", text="t", message_id=f"<gone-{i}@x>")
    return RoutedMessage(
        message=message,
        account=account,
        route="default",
        from_addr="a@b.example",
        envelope_from="a@b.example",
        first_attempt_at=1.0,
    )


def test_rate_limit_sends_mail_for_an_account_that_no_longer_exists_back_to_route(ctx: StageContext) -> None:
    forwards = rate_limit.handle([routed_to("acme/deleted"), routed_to("alpha", 2)], ctx).forwards
    stages = {json.loads(f.item)["message"]["event"]["event_id"]: f.stage for f in forwards}
    assert stages == {"gone-1": "route", "gone-2": "send"}


def test_send_reroutes_instead_of_crashing_and_takes_no_ledger_claim(ctx: StageContext) -> None:
    runtime = send.SendRuntime(ctx)

    async def go() -> Handled:
        try:
            return await send.handle([routed_to("acme/deleted")], runtime)
        finally:
            await runtime.close()

    handled = asyncio.run(go())
    assert [f.stage for f in handled.forwards] == ["route"] and not handled.dead
    assert not ctx.redis.keys("mailpipe:default:ledger:*")


def test_classify_still_classifies_a_reply_from_an_account_removed_meanwhile(ctx: StageContext) -> None:
    result = SendResult(routed=routed_to("acme/deleted"), reply=SendReply(account="acme/deleted", code=250, text="ok"))
    verdict = classify.verdict_for(result, ctx)
    assert verdict.event == "sent"
    assert classify.provider_of("acme/deleted", ctx) == "unknown"
