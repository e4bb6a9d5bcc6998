"""Access tokens for an XOAUTH2 mailbox's IMAP login, asked for from a poller's thread.

The poller is blocking code on its own thread; tokens come from the same :class:`TokenSource` the send
stage uses (shared Redis cache, single-flight refresh, rotation kept, revocation reported), run on a
private event loop for the few moments a login takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis

from pipeline.config.resolve import ResolvedOAuth
from pipeline.inbox.session import AccessTokens
from pipeline.oauth.tokens import GrantKeeper, TokenSource
from pipeline.registry.refs import DEFAULT_TENANT


@contextmanager
def access_tokens(redis_url: str, account: str, grant: ResolvedOAuth, keeper: GrantKeeper | None) -> Iterator[AccessTokens]:
    """``refused → token`` for ``ImapSession.open``; ``account`` is the runtime reference the SMTP pool uses too."""
    with asyncio.Runner() as runner:
        client = aioredis.Redis.from_url(redis_url)
        source = TokenSource(client, keeper=keeper)

        def token(refused: str | None) -> str:
            return runner.run(source.grant_token(account, grant, tenant=DEFAULT_TENANT, refused=refused))

        try:
            yield token
        finally:
            runner.run(client.aclose())
