"""Access tokens in Redis, shared by every worker and host: encrypted, kept until shortly before expiry.

The cache key (AES-GCM) is derived from the grant itself (client id and refresh token), so only a
process that holds the grant can read a cached token, and a reconnected account (new refresh token)
never reads its predecessor's. A per-account lock makes one process the refresher while the others
wait for its result; a short failure marker hands them its failure too, instead of a second attempt.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.config.resolve import ResolvedOAuth
from pipeline.oauth.endpoint import AccessToken
from pipeline.state import lua_scripts
from pipeline.state.keys import PREFIX

NONCE_BYTES = 12
MAX_MARGIN = 300.0  # refresh at most five minutes before expiry ...
MARGIN_SHARE = 0.2  # ... or at a fifth of a short token's life

_RELEASE = lua_scripts.load("oauth_lock_release")


def refresh_margin(lifetime: float) -> float:
    """Seconds before expiry at which a token stops being handed out (and a refresh starts)."""
    return min(MAX_MARGIN, max(0.0, lifetime) * MARGIN_SHARE)


def grant_fingerprint(grant: ResolvedOAuth) -> str:
    """Names one grant without revealing it (keys of revocation markers)."""
    material = f"{grant.client_id}\0{grant.refresh_token.get_secret_value()}".encode()
    return hashlib.sha256(b"mailpipe oauth grant id\0" + material).hexdigest()[:24]


@dataclass(frozen=True)
class Failure:
    kind: str  # "refused" or "unavailable"
    error: str  # RFC 6749 error code or a short description, never a secret


class TokenCache:
    def __init__(self, client: aioredis.Redis, tenant: str, account: str, grant: ResolvedOAuth) -> None:
        self.client = client
        self.tenant = tenant
        self.account = account
        base = f"{PREFIX}:{tenant}:oauth:{account}"
        self.token_key = f"{base}:token"
        self.lock_key = f"{base}:lock"
        self.failure_key = f"{base}:failed:{grant_fingerprint(grant)}"
        self._aad = f"mailpipe/oauth-token/v1/tenant={tenant}/account={account}".encode()
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=self._aad, info=b"mailpipe oauth token cache").derive(
            f"{grant.client_id}\0{grant.refresh_token.get_secret_value()}".encode()
        )

    def __repr__(self) -> str:
        return f"TokenCache(tenant={self.tenant!r}, account={self.account!r})"

    async def get(self) -> AccessToken | None:
        blob = await self.client.get(self.token_key)
        if not isinstance(blob, bytes) or not blob:
            return None
        try:
            plain = AESGCM(self._key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad)
        except (InvalidTag, ValueError):
            return None  # written for another grant of this account (reconnected): a miss
        data = json.loads(plain)
        return AccessToken(str(data["t"]), float(data["e"]))

    async def put(self, token: AccessToken) -> None:
        keep = token.lifetime() - refresh_margin(token.lifetime())
        if keep <= 0:
            return
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps({"t": token.value, "e": token.expires_at}).encode()
        await self.client.set(self.token_key, nonce + AESGCM(self._key).encrypt(nonce, plain, self._aad), px=int(keep * 1000))

    async def drop(self, token: str) -> None:
        """Forget the cached token if it is still ``token`` (a server refused it); a newer one stays."""
        cached = await self.get()
        if cached is not None and cached.value == token:
            await self.client.delete(self.token_key)

    async def lock(self, ttl: float) -> str | None:
        """The lock's owner id when this process is now the refresher, else None."""
        owner = uuid.uuid4().hex
        taken = await self.client.set(self.lock_key, owner, nx=True, px=int(ttl * 1000))
        return owner if taken else None

    async def unlock(self, owner: str) -> None:
        await lua_scripts.run_async(self.client, _RELEASE.bind(keys=[self.lock_key], args=[owner]))

    async def locked(self) -> bool:
        return bool(await self.client.exists(self.lock_key))

    async def fail(self, failure: Failure, ttl: float) -> bool:
        """Remember a failed refresh for ``ttl`` seconds; True when no failure was remembered before."""
        payload = json.dumps({"k": failure.kind, "e": failure.error})
        first = await self.client.set(self.failure_key, payload, px=int(ttl * 1000), nx=True)
        if not first:
            await self.client.set(self.failure_key, payload, px=int(ttl * 1000))
        return bool(first)

    async def failure(self) -> Failure | None:
        raw = await self.client.get(self.failure_key)
        if not raw:
            return None
        data = json.loads(raw)
        return Failure(str(data["k"]), str(data["e"]))

    async def clear_failure(self) -> None:
        await self.client.delete(self.failure_key)
