"""SASL XOAUTH2 over SMTP, with one refresh when the server calls the token expired.

aiosmtplib encodes the XOAUTH2 initial response; the exchange is spelt out here because its own
``auth_xoauth2`` discards the ``334`` challenge, and that challenge (base64 JSON such as
``{"status":"401","schemes":"bearer"}``) is how a server says "this token is no longer good".
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import aiosmtplib
from aiosmtplib.auth import auth_xoauth2_encode

from pipeline.config.resolve import ResolvedAccount
from pipeline.oauth.tokens import TokenSource

AUTH_OK = 235
AUTH_CONTINUE = 334


class XOAuth2Rejected(aiosmtplib.SMTPAuthenticationError):
    """The server refused the token; ``challenge`` is its JSON error when it sent one."""

    def __init__(self, code: int, message: str, challenge: dict[str, Any] | None) -> None:
        super().__init__(code, message)
        self.challenge = challenge


def decode_challenge(text: str) -> dict[str, Any] | None:
    """The JSON error in a ``334`` XOAUTH2 challenge, or None when it is not one."""
    try:
        data = json.loads(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


async def authenticate(client: aiosmtplib.SMTP, username: str, token: str) -> aiosmtplib.SMTPResponse:
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    response = await client.execute_command(b"AUTH", b"XOAUTH2", auth_xoauth2_encode(username, token))
    challenge = None
    if response.code == AUTH_CONTINUE:
        challenge = decode_challenge(response.message)
        response = await client.execute_command(b"")  # the empty reply that asks for the final status
    if response.code != AUTH_OK:
        raise XOAuth2Rejected(response.code, response.message, challenge)
    return response


async def login(client: aiosmtplib.SMTP, account: ResolvedAccount, tokens: TokenSource, *, tenant: str = "default") -> str:
    """Log in with the account's access token; a JSON-challenged refusal gets one fresh token and one retry."""
    username = account.username or ""
    token = await tokens.token(account, tenant=tenant)
    try:
        response = await authenticate(client, username, token)
    except XOAuth2Rejected as exc:
        if exc.challenge is None:
            raise
        token = await tokens.token(account, tenant=tenant, refused=token)
        response = await authenticate(client, username, token)
    return f"{response.code} {response.message}"
