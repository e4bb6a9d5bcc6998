"""Rotated refresh tokens: Microsoft (and some other servers) answer a refresh with a new refresh token
and refuse the old one from then on, so the new one must be kept before anything else happens.

Redis keeps it first, for every account: under the *configured* grant (what the TOML or the registry
snapshot holds), AES-GCM with a key derived from that grant, so only a process holding the grant can
read it and a reconnected account (a new configured grant) never picks up its predecessor's chain.
Every refresh starts from :meth:`RotatedTokens.effective`: the newest refresh token for the configured
grant. The entry lives ``ROTATED_TTL`` (a provider drops an unused refresh token after about as long)
and is renewed at every rotation.

TOML accounts hold their secrets by reference and cannot be written back: Redis is where their
rotated token lives (losing Redis loses it, and the mailbox owner must connect again). A registry
account's rotated token is also sealed into PostgreSQL by a :class:`~pipeline.oauth.tokens.GrantKeeper`;
once the workers' snapshots carry it, it is their configured grant and the Redis entry for the old one
only bridges the moments until every worker has reloaded.
"""

from __future__ import annotations

import os

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from pipeline.config.resolve import ResolvedOAuth
from pipeline.oauth.cache import NONCE_BYTES, grant_fingerprint
from pipeline.observe.redact import remember
from pipeline.state.keys import PREFIX

ROTATED_TTL = 90 * 86_400.0  # Microsoft's refresh tokens lapse after 90 days unused; Google's sooner when unused


def with_refresh_token(grant: ResolvedOAuth, refresh_token: str) -> ResolvedOAuth:
    return grant.model_copy(update={"refresh_token": SecretStr(refresh_token)})


class RotatedTokens:
    """The newest refresh token of one account's configured grant, kept encrypted in Redis."""

    def __init__(self, client: aioredis.Redis, tenant: str, account: str, configured: ResolvedOAuth) -> None:
        self.client = client
        self.configured = configured
        self.key = f"{PREFIX}:{tenant}:oauth:{account}:rotated:{grant_fingerprint(configured)}"
        self._aad = f"mailpipe/oauth-rotated/v1/tenant={tenant}/account={account}".encode()
        material = f"{configured.client_id}\0{configured.refresh_token.get_secret_value()}".encode()
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=self._aad, info=b"mailpipe oauth rotated").derive(material)

    def __repr__(self) -> str:
        return f"RotatedTokens(key={self.key!r})"

    async def effective(self) -> ResolvedOAuth:
        """The configured grant with its newest refresh token (itself when it never rotated)."""
        blob = await self.client.get(self.key)
        if not isinstance(blob, bytes) or len(blob) <= NONCE_BYTES:
            return self.configured
        try:
            plain = AESGCM(self._key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad)
        except (InvalidTag, ValueError):
            return self.configured
        token = plain.decode()
        remember(token)
        return with_refresh_token(self.configured, token)

    async def save(self, refresh_token: str) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(self._key).encrypt(nonce, refresh_token.encode(), self._aad)
        await self.client.set(self.key, sealed, px=int(ROTATED_TTL * 1000))
