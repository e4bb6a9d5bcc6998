"""A grant the provider revoked: the account is paused as ``auth_failed`` and the tenant is told to reconnect it."""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from pipeline.limits.account_state import Health
from pipeline.oauth import instruments
from pipeline.oauth.errors import RECONNECT_HINT
from pipeline.state import keys
from pipeline.state.status import STREAM_MAXLEN

EVENT = "account.reconnect_needed"
REASON = "oauth_revoked"


def owner_of(tenant: str, account: str) -> tuple[str, str]:
    """(tenant, account name) the tenant knows: a worker names a tenant's account ``tenant/name``
    (pipeline.registry.refs, a layer above) under the ``default`` runtime tenant."""
    owner, slash, name = account.partition("/")
    return (owner, name) if slash and tenant == "default" else (tenant, account)


async def report_revoked(client: aioredis.Redis, *, tenant: str, account: str, provider: str, error: str) -> None:
    """Pause the account (as a 535 would) and put ``account.reconnect_needed`` on its tenant's events stream."""
    now = time.time()
    owner, name = owner_of(tenant, account)
    reason = f"{REASON}: the provider refused the refresh token ({error}); {RECONNECT_HINT}"
    entry = {"at": now, "account": name, "provider": provider, "reason": REASON, "error": error, "hint": RECONNECT_HINT}
    pipe = client.pipeline(transaction=False)
    # The same fields AccountState.pause writes; this runs on the worker's event loop, hence the async client.
    pipe.hset(
        keys.account_state(tenant, account),
        mapping={"paused": "1", "health": Health.AUTH_FAILED.value, "reason": reason, "since": now},
    )
    pipe.xadd(
        keys.events_stream(owner),
        {
            "type": EVENT,
            "state": EVENT,
            "tenant": owner,
            "account": name,
            "reason": REASON,
            "hint": RECONNECT_HINT,
            "entry": json.dumps(entry),
        },
        maxlen=STREAM_MAXLEN,
        approximate=True,
    )
    await pipe.execute()
    instruments.reconnect_needed(account, provider)
