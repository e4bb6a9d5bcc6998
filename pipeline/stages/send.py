"""send: one SMTP transaction per message over the account's pooled sessions, guarded by the ledger.

`handle` runs on the worker process's event loop (Dramatiq's AsyncIO thread, shared by every send
batch of the process) and only awaits there: SMTP, and the ledger and limits through the async
Redis client. The emails of a batch run concurrently and each ends with its own result; one that
raises fails alone (an unreachable Redis: it is tried again alone). Status writes and dead letters
are left in the `Handled` result for the worker thread (`batch.run_batch_on_loop`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog

from pipeline.context import StageContext
from pipeline.errors import HeaderInjection, MessageTooLarge
from pipeline.limits.quota import GateResult, GateVerdict, SendGate
from pipeline.models import RecipientEvent, RoutedMessage, SendReply, SendResult
from pipeline.oauth.tokens import TokenSource
from pipeline.observe import journey, metrics
from pipeline.registry.cache import NOT_CACHED
from pipeline.registry.grants import grant_keeper
from pipeline.registry.refs import split_ref
from pipeline.smtp.mime import UnsendableAddress, build_message, envelope_for
from pipeline.smtp.pool import Pools, SmtpUtf8Unsupported, Superseded
from pipeline.stages.batch import INFRASTRUCTURE_ERRORS, DeadLetter, Forward, Handled
from pipeline.stages.rate_limit import back_to_route
from pipeline.state.ledger import Claim, SendLedger

log = structlog.get_logger("mailpipe.send")
COMPLETE_PATIENCE = 300.0  # seconds a reply is held while Redis is unreachable
DEFAULT_TIMEOUT = 30.0  # an account's SMTP timeout unless it sets one (tenants' accounts do not)
RETRY_ALONE = 1.0  # an email whose Redis call failed (unreachable) is tried again on its own after this
STAGE = "send"


@dataclass
class SendRuntime:
    """Per worker process, living on its event loop: SMTP pools and an async Redis client."""

    ctx: StageContext
    pools: Pools = field(default_factory=Pools)
    _ledger: SendLedger | None = None
    _gate: SendGate | None = None

    def __post_init__(self) -> None:
        self.pools.budget.resize(self.ctx.config.tenants.max_smtp_sessions)

    @property
    def ledger(self) -> SendLedger:
        if self._ledger is None:
            # A whole batch of sends runs concurrently on this loop: redis-py's default cap of 100
            # connections per client made bursts fail with MaxConnectionsError.
            client = aioredis.Redis.from_url(self.ctx.config.redis_url, health_check_interval=30, max_connections=2000)
            lease = max([a.timeout for a in self.ctx.resolved.values()], default=DEFAULT_TIMEOUT) * 3 + 5
            self._ledger = SendLedger(client, lease=lease, policy=self.ctx.config.send.ambiguous.value)
            # XOAUTH2 accounts share access tokens through this Redis; the registry keeps rotated and revoked grants.
            self.pools.tokens = TokenSource(client, keeper=grant_keeper(self.ctx.registry.source))
        return self._ledger

    async def close(self) -> None:
        """QUIT every pooled SMTP session and release the Redis client (worker shutdown)."""
        await self.pools.close()
        if self._ledger is not None:
            await self._ledger.client.aclose()

    @property
    def gate(self) -> SendGate:
        if self._gate is None:
            self._gate = SendGate(self.ledger.client, self.ctx.config.rate_limit, calls=self.ledger.calls)
        return self._gate


async def send(message: RoutedMessage, runtime: SendRuntime) -> tuple[Forward | None, DeadLetter | None]:
    ctx = runtime.ctx
    event = message.event
    # Each message runs in its own gathered task: this binding stays with this email's lines.
    structlog.contextvars.bind_contextvars(
        event_id=event.event_id, stage="send", account=message.account, attempt=message.attempt
    )
    found = ctx.registry.cached_account(message.account)
    if found is NOT_CACHED:  # loading a tenant's snapshot reads the database: never on the event loop
        found = await asyncio.to_thread(ctx.registry.account, message.account)
    if found is None or not found.usable:
        return back_to_route(message), None  # removed or paused since route chose it: choose again
    claim = await runtime.ledger.claim(event.tenant, event.event_id)
    if claim.claim == Claim.SENT and claim.reply is not None:
        reply = claim.reply.model_copy(update={"from_ledger": True})
        return Forward("classify", SendResult(routed=message, reply=reply).to_json()), None
    if claim.claim == Claim.FINAL:
        log.info("send_skipped_final", event_id=event.event_id, account=message.account, stage="send")
        return None, None
    if claim.claim == Claim.BUSY:
        return Forward("send", message.to_json(), claim.retry_in + 0.5), None
    if claim.claim in (Claim.AMBIGUOUS_SKIP, Claim.SENT):  # SENT without a reply: an earlier skip
        text = "not resent: an earlier attempt may have been accepted"
        reply = SendReply(account=message.account, code=250, text=text, from_ledger=True)
        return Forward("classify", SendResult(routed=message, reply=reply).to_json()), None
    account = found.resolved
    try:
        envelope = envelope_for(message)
        max_bytes = min(account.max_message_bytes, ctx.config.send.max_message_bytes)
        data = build_message(message, max_bytes=max_bytes, smtputf8=envelope.smtputf8)
    except (HeaderInjection, MessageTooLarge, UnsendableAddress) as exc:
        return await _refuse(runtime, message, claim.token, str(exc))
    # Limits are checked and taken now, right before the SMTP transaction (never at enqueue time).
    gate = await runtime.gate.take(account, event.to)
    if not gate.ok:
        return await _hold(runtime, message, claim.token, gate), None
    if claim.claim == Claim.CLAIMED_AMBIGUOUS:
        log.warning("ambiguous_resend", event_id=event.event_id, account=account.name, stage="send")

    async def commit() -> bool:
        return await runtime.ledger.commit(event.tenant, event.event_id, claim.token)

    try:
        reply = await runtime.pools.get(account).send(
            envelope.sender, envelope.recipient, data, smtputf8=envelope.smtputf8, before_data=commit
        )
    except Superseded:
        await runtime.gate.refund(gate)
        log.warning("send_superseded", event_id=event.event_id, account=account.name, stage="send")
        return Forward("send", message.to_json(), runtime.ledger.lease / 2), None
    except SmtpUtf8Unsupported as exc:
        await runtime.gate.refund(gate)
        return await _refuse(runtime, message, claim.token, str(exc))
    # The ledger write comes first: the ambiguous window (250 received, not yet recorded) stays minimal.
    await complete_durably(runtime, event.tenant, event.event_id, claim.token, reply)
    if not reply.accepted:
        await runtime.gate.refund(gate)  # counts hold what the provider accepted
    metrics.send_reply(account.name, account.provider, reply)
    journey.note(event.event_id, metrics.reply_class(reply), code=reply.code, smtp_ms=round(reply.elapsed * 1000, 1))
    return Forward("classify", SendResult(routed=message, reply=reply).to_json()), None


async def _hold(runtime: SendRuntime, message: RoutedMessage, token: str, gate: GateResult) -> Forward:
    """Not sent now: release the claim; another account (route) or a later slot (rate_limit)."""
    event = message.event
    text = f"not sent: {gate.verdict.value} {gate.scope.key if gate.scope else ''}".rstrip()
    await runtime.ledger.complete(event.tenant, event.event_id, token, SendReply(account=message.account, text=text))
    if gate.account_blocked:
        return back_to_route(message)
    wait = max(0.0, gate.until - runtime.ctx.clock())
    if gate.verdict == GateVerdict.EARLY:
        return Forward("send", message.to_json(), wait)  # its slot came early: back as soon as there is room
    return Forward("rate_limit", message.to_json(), wait)


async def complete_durably(runtime: SendRuntime, tenant: str, event_id: str, token: str, reply: SendReply) -> None:
    """Record the reply, riding out a Redis outage: while this worker holds the reply in memory,
    giving up would turn a known answer into an ambiguous one (and, under resend, a duplicate)."""
    deadline = time.monotonic() + COMPLETE_PATIENCE
    pause = 0.1
    while True:
        try:
            await runtime.ledger.complete(tenant, event_id, token, reply)
            return
        except INFRASTRUCTURE_ERRORS as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("ledger_write_retry", event_id=event_id, error=type(exc).__name__, stage="send")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)


async def _refuse(runtime: SendRuntime, message: RoutedMessage, token: str, error: str) -> tuple[None, DeadLetter]:
    """A message that can never be sent as it is: rejected, kept in the dead-letter store."""
    event = message.event
    await runtime.ledger.complete(event.tenant, event.event_id, token, SendReply(account=message.account, text=error))
    return None, DeadLetter(event.tenant, event.event_id, STAGE, error, message.to_json(), RecipientEvent.REJECTED)


async def handle(messages: list[RoutedMessage], runtime: SendRuntime) -> Handled:
    """Every email of the batch at once, each to its own end: no send is left running unobserved."""
    handled = Handled()
    registry = runtime.ctx.registry
    if any(registry.cached_account(m.account) is NOT_CACHED for m in messages):
        # The batch's tenants in one round of queries, off the event loop (it never waits on the database).
        await asyncio.to_thread(registry.prefetch, [split_ref(m.account)[0] for m in messages])
    results = await asyncio.gather(*(send(m, runtime) for m in messages), return_exceptions=True)
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, (*INFRASTRUCTURE_ERRORS, asyncio.CancelledError)):
            # Not this email's fault: it goes round again on its own (the ledger keeps it from a
            # second send; a claim it still holds makes the retry wait for the lease, as it must).
            log.warning("send_retried_alone", event_id=message.event.event_id, error=type(result).__name__, stage=STAGE)
            handled.forwards.append(Forward(STAGE, message.to_json(), RETRY_ALONE))
        elif isinstance(result, Exception):
            handled.fail(STAGE, message, result)
        elif isinstance(result, BaseException):
            raise result
        else:
            forward, dead = result
            if forward is not None:
                handled.forwards.append(forward)
            if dead is not None:
                handled.dead.append(dead)
    return handled


def decode(raw: str) -> RoutedMessage:
    return RoutedMessage.from_stage(raw)
