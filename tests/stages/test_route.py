"""route as a plain function: first match wins, default otherwise, suppression and pauses respected."""

from __future__ import annotations

from pipeline.context import StageContext
from pipeline.models import LeadEvent, RenderedMessage, RouteRequest
from pipeline.stages import route as route_stage
from pipeline.stages.batch import run_batch


def request(**fields: object) -> RouteRequest:
    event = LeadEvent.model_validate({"event_id": "x", "to": "lead@receiver.example", "subject": "s", "text": "t"} | fields)
    return RouteRequest(message=RenderedMessage(event=event, subject="s", text="t", message_id="<m@x>"))


def test_list_and_campaign_routes_pick_their_accounts_and_others_the_default(ctx: StageContext) -> None:
    def account_for(**fields: object) -> str | None:
        decision = route_stage.route(request(**fields), ctx, suppressed=None, paused={})
        return decision.routed.account if decision.routed else None

    assert account_for(list="nordics") == "alpha"
    assert account_for(campaign="outreach") == "beta"
    assert account_for(list="nordics", campaign="outreach") == "alpha"  # first match wins
    assert account_for(list="elsewhere") == "gamma"


def test_the_routed_message_carries_the_accounts_sender_identity(ctx: StageContext) -> None:
    routed = route_stage.route(request(list="nordics"), ctx, suppressed=None, paused={}).routed
    assert routed is not None
    assert (routed.from_addr, routed.from_name, routed.reply_to, routed.envelope_from) == (
        "alpha@sender.example",
        "Alpha Sender",
        "replies-alpha@sender.example",
        "alpha@sender.example",
    )


def test_a_suppressed_recipient_is_not_routed(ctx: StageContext) -> None:
    decision = route_stage.route(request(), ctx, suppressed="unsubscribed", paused={})
    assert decision.routed is None and decision.suppressed_reason == "unsubscribed"


def test_a_route_whose_only_account_is_paused_waits_instead_of_failing(ctx: StageContext) -> None:
    decision = route_stage.route(request(list="nordics"), ctx, suppressed=None, paused={"alpha": True})
    assert decision.routed is None and decision.suppressed_reason is None and decision.wait > 0


def test_handle_ends_suppressed_recipients_and_forwards_the_rest(ctx: StageContext) -> None:
    ctx.suppression.add("default", "blocked@receiver.example", "complaint")
    from pipeline.models import LeadEvent as Lead

    ctx.status.accept(
        [
            Lead.model_validate({"event_id": i, "to": f"{i}@receiver.example", "subject": "s", "text": "t"})
            for i in ("blocked", "fine")
        ]
    )
    requests = [request(event_id="blocked", to="blocked@receiver.example"), request(event_id="fine", to="fine@receiver.example")]
    forwards = run_batch("route", [r.to_json() for r in requests], route_stage.decode, route_stage.handle, ctx)
    assert [f.stage for f in forwards] == ["rate_limit"]
    assert ctx.status.outcomes(["blocked", "fine"]) == {"blocked": "suppressed", "fine": None}
