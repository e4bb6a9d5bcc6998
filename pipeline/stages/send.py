"""send: one SMTP transaction per message over the account's pooled sessions, guarded by the ledger."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog

from .. import keys
from ..context import StageContext
from ..errors import HeaderInjection, MessageTooLarge
from ..ledger import Claim, SendLedger
from ..mime import build_message
from ..models import RecipientEvent, RoutedMessage, SendReply, SendResult
from ..rotation import day_bucket
from ..smtp_pool import Pools
from ..status import Transition
from .batch import Forward

log = structlog.get_logger("mailpipe.send")


@dataclass
class SendRuntime:
    """Per worker process, living on its event loop: SMTP pools and an async Redis client."""

    ctx: StageContext
    pools: Pools = field(default_factory=Pools)
    _ledger: SendLedger | None = None

    @property
    def ledger(self) -> SendLedger:
        if self._ledger is None:
            client = aioredis.Redis.from_url(self.ctx.config.redis_url, health_check_interval=30)
            lease = max(a.timeout for a in self.ctx.resolved.values()) * 3 + 5
            self._ledger = SendLedger(client, lease=lease, policy=self.ctx.config.send.ambiguous.value)
        return self._ledger


async def send(message: RoutedMessage, runtime: SendRuntime) -> tuple[Forward | None, Transition | None]:
    ctx = runtime.ctx
    event = message.event
    claim = await runtime.ledger.claim(event.tenant, event.event_id)
    if claim.claim == Claim.SENT and claim.reply is not None:
        reply = claim.reply.model_copy(update={"from_ledger": True})
        return Forward("classify", SendResult(routed=message, reply=reply).to_json()), None
    if claim.claim == Claim.BUSY:
        return Forward("send", message.to_json(), claim.retry_in + 0.5), None
    if claim.claim == Claim.AMBIGUOUS_SKIP:
        reply = SendReply(account=message.account, code=250, text="not resent: an earlier attempt may have been accepted", from_ledger=True)
        return Forward("classify", SendResult(routed=message, reply=reply).to_json()), None
    account = ctx.account(message.account)
    try:
        data = build_message(message, max_bytes=min(account.max_message_bytes, ctx.config.send.max_message_bytes))
    except (HeaderInjection, MessageTooLarge) as exc:
        await runtime.ledger.complete(event.tenant, event.event_id, claim.token, SendReply(account=account.name, text=str(exc)))
        ctx.status.dead_letter(event.tenant, event.event_id, "send", str(exc), message.to_json())
        return None, Transition(event.tenant, event.event_id, RecipientEvent.REJECTED, {"stage": "send", "error": str(exc)})
    if claim.claim == Claim.CLAIMED_AMBIGUOUS:
        log.warning("ambiguous_resend", event_id=event.event_id, account=account.name, stage="send")
    reply = await runtime.pools.get(account).send(message.envelope_from, event.to, data)
    await runtime.ledger.complete(event.tenant, event.event_id, claim.token, reply)
    return Forward("classify", SendResult(routed=message, reply=reply).to_json()), None


async def handle(messages: list[RoutedMessage], runtime: SendRuntime) -> list[Forward]:
    ctx = runtime.ctx
    results = await asyncio.gather(*(send(m, runtime) for m in messages))
    count_sends(ctx, [m for m, (fwd, _) in zip(messages, results, strict=True) if fwd and fwd.stage == "classify"])
    ctx.status.record([t for _, t in results if t is not None])
    return [f for f, _ in results if f is not None]


def count_sends(ctx: StageContext, sent: list[RoutedMessage]) -> None:
    """Daily usage is counted at send time, per account, in the configured time zone."""
    if not sent:
        return
    bucket = day_bucket(ctx.clock(), ctx.config.rate_limit.timezone)
    pipe = ctx.redis.pipeline(transaction=False)
    for message in sent:
        key = keys.window_count("default", message.account, "day", bucket)
        pipe.incr(key)
        pipe.expire(key, 3 * 86400)
    pipe.execute()


def decode(raw: str) -> RoutedMessage:
    return RoutedMessage.model_validate_json(raw)
