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
redelivery never races a transaction that is still running: it gets BUSY and waits.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

from pipeline.models import SendReply
from pipeline.state import keys
from pipeline.state.script_batcher import ScriptBatcher

LEDGER_TTL = 30 * 86400

# KEYS[1] ledger hash, KEYS[2] the event's status hash; ARGV: token, now, lease, policy, ttl
_CLAIM = """
local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome then return {'final', outcome} end
local state = redis.call('HGET', KEYS[1], 'state')
local function claim(ambiguous)
  redis.call('HSET', KEYS[1], 'state', 'sending', 'token', ARGV[1], 'at', ARGV[2])
  if ambiguous then redis.call('HINCRBY', KEYS[1], 'ambiguous', 1) end
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
if not state or state == 'failed' then claim(false) return {'claimed', ''} end
if state == 'sent' then return {'sent', redis.call('HGET', KEYS[1], 'reply')} end
local age = tonumber(ARGV[2]) - tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if age < tonumber(ARGV[3]) then return {'busy', tostring(tonumber(ARGV[3]) - age)} end
if state ~= 'committing' then claim(false) return {'claimed', ''} end
if ARGV[4] == 'skip' then
  redis.call('HSET', KEYS[1], 'state', 'sent', 'reply', '')
  redis.call('HINCRBY', KEYS[1], 'ambiguous', 1)
  return {'ambiguous_skip', ''}
end
claim(true)
return {'claimed_ambiguous', ''}
"""

# KEYS[1] ledger hash; ARGV: token, now. Only the current holder, still before DATA, may commit.
_COMMIT = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'sending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'committing', 'at', ARGV[2])
return 1
"""

# KEYS[1] ledger hash; ARGV: token, state, reply json, ttl
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'reply', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


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

    @property
    def may_send(self) -> bool:
        return self.claim in (Claim.CLAIMED, Claim.CLAIMED_AMBIGUOUS)


class SendLedger:
    def __init__(self, client: aioredis.Redis, *, lease: float, policy: str, calls: ScriptBatcher | None = None) -> None:
        self.client = client
        self.lease = lease
        self.policy = policy
        self.calls = calls or ScriptBatcher(client)  # one pipelined round trip per loop tick
        self._claim = self.calls.register_script(_CLAIM)
        self._complete = self.calls.register_script(_COMPLETE)
        self._commit = self.calls.register_script(_COMMIT)

    async def claim(self, tenant: str, event_id: str) -> ClaimResult:
        token = uuid.uuid4().hex
        result = await self._claim(
            keys=[keys.ledger(tenant, event_id), keys.event(tenant, event_id)],
            args=[token, time.time(), self.lease, self.policy, LEDGER_TTL],
        )
        claim, extra = Claim(result[0].decode()), result[1].decode()
        if claim == Claim.SENT:
            reply = SendReply.model_validate_json(extra) if extra else None
            return ClaimResult(claim, token, reply=reply)
        if claim == Claim.BUSY:
            return ClaimResult(claim, token, retry_in=float(extra))
        return ClaimResult(claim, token)

    async def commit(self, tenant: str, event_id: str, token: str) -> bool:
        """Just before DATA: False when this attempt lost its claim (it must not send the text)."""
        done = await self._commit(keys=[keys.ledger(tenant, event_id)], args=[token, time.time()])
        return bool(done)

    async def ambiguous_count(self, tenant: str, event_id: str) -> int:
        value = await self.client.hget(keys.ledger(tenant, event_id), "ambiguous")
        return int(value or 0)

    async def complete(self, tenant: str, event_id: str, token: str, reply: SendReply) -> bool:
        state = "sent" if reply.accepted else "failed"
        payload = json.dumps(reply.model_dump(mode="json", exclude_none=True))
        done = await self._complete(keys=[keys.ledger(tenant, event_id)], args=[token, state, payload, LEDGER_TTL])
        return bool(done)
