"""Send ledger keyed by event_id: a redelivered or duplicated message is never sent twice.

claim() before the SMTP transaction, commit() just before DATA, complete() right after the
server's reply. States: `sending` (claimed; the envelope may be under way but no message text
has gone out), `committing` (DATA is about to be sent), `sent`, `failed`.

- An attempt found `sending` after its lease was abandoned before DATA: it is reclaimed
  without ambiguity, and the old attempt (if it is merely slow, not dead) loses its commit()
  and aborts before DATA, so it cannot deliver as well.
- An attempt found `committing` after its lease is the only ambiguous case: a crash between
  the end of DATA and complete() (the server may have answered 250). The configured policy
  decides (resend = at-least-once, skip = at-most-once) and the ledger counts it.

The lease outlasts the longest live attempt (commit() renews it for the DATA phase), so a
redelivery never races a transaction that is still running: it gets BUSY and waits. Lease ages
are measured on the Redis server's clock (read inside the scripts), like the send gate's, so a
worker whose own clock is off can neither take over a running lease nor keep one too long.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

from pipeline.models import SendReply
from pipeline.state import keys, lua_scripts
from pipeline.state.script_batcher import ScriptBatcher

LEDGER_TTL = 30 * 86400

_CLAIM = lua_scripts.load("ledger_claim")
_COMMIT = lua_scripts.load("ledger_commit")
_COMPLETE = lua_scripts.load("ledger_complete")


class Claim(enum.StrEnum):
    CLAIMED = "claimed"
    CLAIMED_AMBIGUOUS = "claimed_ambiguous"  # a previous attempt may have been accepted
    SENT = "sent"  # already accepted: do not send again
    BUSY = "busy"  # another attempt is in flight right now
    AMBIGUOUS_SKIP = "ambiguous_skip"
    FINAL = "final"  # the event already has its final outcome (a late copy): never send again


@dataclass
class ClaimResult:
    claim: Claim
    token: str
    reply: SendReply | None = None
    retry_in: float = 0.0


class SendLedger:
    def __init__(self, client: aioredis.Redis, *, lease: float, policy: str, calls: ScriptBatcher | None = None) -> None:
        self.client = client
        self.lease = lease
        self.policy = policy
        self.calls = calls or ScriptBatcher(client)  # one pipelined round trip per loop tick

    async def claim(self, tenant: str, event_id: str) -> ClaimResult:
        token = uuid.uuid4().hex
        call = _CLAIM.bind(
            keys=[keys.ledger(tenant, event_id), keys.event(tenant, event_id)],
            args=[token, self.lease, self.policy, LEDGER_TTL],
        )
        result = await self.calls.run(call)
        claim, extra = Claim(result[0].decode()), result[1].decode()
        if claim == Claim.SENT:
            reply = SendReply.model_validate_json(extra) if extra else None
            return ClaimResult(claim, token, reply=reply)
        if claim == Claim.BUSY:
            return ClaimResult(claim, token, retry_in=float(extra))
        return ClaimResult(claim, token)

    async def commit(self, tenant: str, event_id: str, token: str) -> bool:
        """Just before DATA: False when this attempt lost its claim (it must not send the text)."""
        done = await self.calls.run(_COMMIT.bind(keys=[keys.ledger(tenant, event_id)], args=[token]))
        return bool(done)

    async def complete(self, tenant: str, event_id: str, token: str, reply: SendReply) -> bool:
        state = "sent" if reply.accepted else "failed"
        payload = json.dumps(reply.model_dump(mode="json", exclude_none=True))
        call = _COMPLETE.bind(keys=[keys.ledger(tenant, event_id)], args=[token, state, payload, LEDGER_TTL])
        done = await self.calls.run(call)
        return bool(done)
