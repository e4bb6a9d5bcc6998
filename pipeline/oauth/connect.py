"""The "Connect with Google/Microsoft" flow's parts: PKCE, a signed single-use ``state``, safe return URLs.

The ``state`` carries tenant, account, provider, return URL, expiry and the id of a pending connect in
Redis; it is HMAC-signed with a key derived from the deployment's secret, so a forged or altered one
is refused without a lookup. The pending connect (holding the PKCE verifier) is taken with GETDEL: the
first callback consumes it, a replay finds nothing. Redis forgets it when the state expires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from pydantic import SecretStr

from pipeline.config.oauth import OAuthProvider, origin_of
from pipeline.oauth.errors import StateRefused
from pipeline.state.keys import PREFIX

_KEY_LABEL = b"mailpipe oauth connect state v1"
MAX_STATE_CHARS = 2048
MAX_RETURN_URL_CHARS = 2000
VERIFIER_BYTES = 48  # 64 characters: RFC 7636 asks for 43 to 128


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_verifier() -> str:
    return secrets.token_urlsafe(VERIFIER_BYTES)


def new_connect_id() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class ConnectState:
    """What a ``state`` vouches for."""

    tenant: str
    account: str
    provider: OAuthProvider
    connect_id: str  # names the pending connect (and its PKCE verifier) in Redis
    return_url: str
    expires_at: float


class StateSigner:
    def __init__(self, secret: SecretStr) -> None:
        self._key = hmac.new(secret.get_secret_value().encode(), _KEY_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "StateSigner()"

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, state: ConnectState) -> str:
        body = {
            "t": state.tenant,
            "a": state.account,
            "p": state.provider.value,
            "c": state.connect_id,
            "r": state.return_url,
            "e": round(state.expires_at, 3),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, *, now: float | None = None) -> ConnectState:
        """The state's content; StateRefused when forged, altered or expired."""
        if not token or len(token) > MAX_STATE_CHARS or token.count(".") != 1:
            raise StateRefused("state: not a state this deployment issued")
        payload, mac = token.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise StateRefused("state: signature does not match (forged or altered)")
        try:
            body = json.loads(_unb64(payload))
            state = ConnectState(
                tenant=str(body["t"]),
                account=str(body["a"]),
                provider=OAuthProvider(body["p"]),
                connect_id=str(body["c"]),
                return_url=str(body["r"]),
                expires_at=float(body["e"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise StateRefused("state: not a state this deployment issued") from None
        if state.expires_at <= (time.time() if now is None else now):
            raise StateRefused("state: expired; start the connection again")
        return state


def check_return_url(url: str, allowed_origins: list[str]) -> str:
    """``url`` when it is https (or on an allow-listed origin) and safe to append a result to; else ValueError."""
    if len(url) > MAX_RETURN_URL_CHARS or any(c in url for c in "\r\n\t ") or "\\" in url:
        raise ValueError("return_url: not a valid URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("return_url: not a valid URL") from None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError("return_url: needs a host and no user name or password in it")
    if parts.fragment:
        raise ValueError("return_url: may not have a #fragment")
    if parts.scheme == "https" or origin_of(url) in allowed_origins:
        return url
    raise ValueError("return_url: must be https, or start with an origin listed in [oauth] return_origins")


def with_result(return_url: str, result: dict[str, str]) -> str:
    """``return_url`` with ``result`` added to its query (its own parameters kept, ours replacing same-named ones)."""
    parts = urlsplit(return_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in result]
    return urlunsplit(parts._replace(query=urlencode(query + list(result.items()))))


@dataclass(frozen=True)
class PendingConnect:
    """Kept in Redis between start and callback; ``verifier`` is the PKCE secret, never shown."""

    tenant_id: int
    actor: str  # who started it, for the audit log
    verifier: str = field(repr=False)
    new_account: dict[str, Any] | None = None  # a new account's fields (no secrets), created by the callback


class PendingConnects:
    """Pending connects in Redis: written at start, taken exactly once (GETDEL) at the callback."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @staticmethod
    def key(connect_id: str) -> str:
        return f"{PREFIX}:oauth:connect:{connect_id}"

    def put(self, connect_id: str, pending: PendingConnect, ttl: float) -> None:
        value = json.dumps(
            {"tenant_id": pending.tenant_id, "actor": pending.actor, "verifier": pending.verifier, "new": pending.new_account}
        )
        if not self.client.set(self.key(connect_id), value, px=int(ttl * 1000), nx=True):
            raise StateRefused("state: connect id collision; start again")

    def take(self, connect_id: str) -> PendingConnect:
        raw = self.client.getdel(self.key(connect_id))
        if not raw:
            raise StateRefused("state: already used or expired; start the connection again")
        data = json.loads(raw)
        new = data.get("new")
        return PendingConnect(
            int(data["tenant_id"]), str(data["actor"]), str(data["verifier"]), new if isinstance(new, dict) else None
        )
