"""A finding becomes a status update on its event, suppression where due, and a delivery event.

Every inbox event is an *update*: the event already ended in `sent`, and a bounce mail after that
moves its state to `bounced` in the history and the events stream without a second outcome.
"""

from __future__ import annotations

import time

from pipeline.context import StageContext
from pipeline.inbox.classify import STATE_FOR_KIND, Finding, Kind
from pipeline.models import DeliveryEvent
from pipeline.observe import metrics
from pipeline.state.status import Transition


def apply_finding(finding: Finding, ctx: StageContext, mailbox: str) -> bool:
    """Record the finding on its event; False when there is nothing to record."""
    ref = finding.ref
    state = STATE_FOR_KIND.get(finding.kind)
    if ref is None or state is None:
        return False
    entry = {**finding.entry, "mailbox": mailbox}
    if not ctx.status.record([Transition(ref.tenant, ref.event_id, state, entry, update=True)])[0]:
        return False  # the event is gone (expired or never accepted here)
    status = ctx.status.get(ref.tenant, ref.event_id)
    recipient = str(status.event.get("to")) if status and status.event and status.event.get("to") else None
    if recipient:
        _suppress(finding, ctx, ref.tenant, recipient)
    _count(finding, ctx, mailbox)
    ctx.pm.hook.mailpipe_delivery_event(
        event=DeliveryEvent(
            event=state,
            tenant=ref.tenant,
            event_id=ref.event_id,
            message_id=ref.message_id,
            recipient=recipient,
            provider="imap",
            reason=finding.reason,
            permanent=finding.hard,
            status=finding.status,
            smtp_reply=entry.get("reply") or None,
            occurred_at=time.time(),
            details=entry,
        )
    )
    return True


def _count(finding: Finding, ctx: StageContext, mailbox: str) -> None:
    """Bounces and complaints in the same metrics as those seen at send time or by webhook."""
    kind, _, name = mailbox.partition(":")
    account = name if kind == "account" else "unknown"
    provider = next((a.provider for a in ctx.config.accounts if a.name == account), "imap")
    if finding.kind == Kind.BOUNCE:
        metrics.bounce(provider, finding.reason, hard=finding.hard, account=account)
    elif finding.kind == Kind.COMPLAINT:
        metrics.complaint(provider, finding.reason)


def _suppress(finding: Finding, ctx: StageContext, tenant: str, recipient: str) -> None:
    if finding.kind == Kind.COMPLAINT:
        ctx.suppression.add(tenant, recipient, "complaint", source="complaint")
    elif finding.kind == Kind.BOUNCE and finding.hard:
        ctx.suppression.add(tenant, recipient, finding.reason or "undefined", source="bounce")
    elif finding.kind == Kind.BOUNCE:
        limits = ctx.config.suppression
        limit, window = limits.soft_bounce_limit, limits.soft_bounce_window
        ctx.suppression.soft_bounce(tenant, recipient, limit=limit, window=window, reason=finding.reason or "undefined")
