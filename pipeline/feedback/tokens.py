"""Signed link tokens for unsubscribe, click and open URLs: stateless, tamper-evident, kind-bound.

A token is ``<payload>.<mac>``, both base64url without padding: the payload is compact JSON
(kind, tenant, event_id and the kind's field: the address to unsubscribe, the URL to redirect
to); the MAC is HMAC-SHA256 over ``kind`` and payload with a key derived from ``[serve] secret``,
cut to 128 bits. A token of one kind never verifies as another, and nothing in a token is
trusted before its MAC matches, so a click token cannot be edited into an open redirect.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass

from pydantic import SecretStr

from pipeline.secrets import SecretRef

MAC_BYTES = 16
MAX_TOKEN_CHARS = 8192
_KEY_LABEL = b"mailpipe link token v1"


class TokenKind(enum.StrEnum):
    UNSUBSCRIBE = "u"
    CLICK = "c"
    OPEN = "o"


@dataclass(frozen=True)
class LinkToken:
    kind: TokenKind
    tenant: str
    event_id: str
    address: str | None = None  # unsubscribe: who asked to leave
    url: str | None = None  # click: where to send the reader


class BadToken(ValueError):
    """The token is malformed, of another kind, or its MAC does not match (a 404, never detail)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("not base64url") from None


class TokenSigner:
    def __init__(self, secret: SecretStr) -> None:
        self._key = hmac.new(secret.get_secret_value().encode(), _KEY_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "TokenSigner(**********)"

    def _mac(self, kind: TokenKind, payload: str) -> bytes:
        return hmac.new(self._key, kind.value.encode() + b"." + payload.encode(), hashlib.sha256).digest()[:MAC_BYTES]

    def sign(self, token: LinkToken) -> str:
        fields = {"k": token.kind.value, "t": token.tenant, "e": token.event_id, "a": token.address, "u": token.url}
        body = json.dumps({k: v for k, v in fields.items() if v is not None}, separators=(",", ":"), ensure_ascii=False)
        payload = _b64(body.encode())
        return f"{payload}.{_b64(self._mac(token.kind, payload))}"

    def verify(self, token: str, kind: TokenKind) -> LinkToken:
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise BadToken("malformed")
        payload, mac = token.split(".")
        if not hmac.compare_digest(_unb64(mac), self._mac(kind, payload)):
            raise BadToken("bad signature")
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            raise BadToken("bad payload") from None
        if not isinstance(data, dict) or data.get("k") != kind.value:
            raise BadToken("wrong kind")
        tenant, event_id = data.get("t"), data.get("e")
        address, url = data.get("a"), data.get("u")
        if not isinstance(tenant, str) or not isinstance(event_id, str):
            raise BadToken("incomplete")
        if not (address is None or isinstance(address, str)) or not (url is None or isinstance(url, str)):
            raise BadToken("incomplete")
        return LinkToken(kind, tenant, event_id, address, url)


@functools.lru_cache(maxsize=8)
def signer_for(secret: SecretRef) -> TokenSigner:
    """One signer per configured secret reference, resolved once per process."""
    return TokenSigner(secret.resolve())
