"""Mailbox providers (Gmail, Yahoo, Outlook, Zoho) send only as the login or one of its aliases.

They either reject another From (Outlook ``5.2.252 SendAsDenied``, Yahoo ``553``, Zoho
``553 Sender is not allowed to relay``) or silently rewrite it (Gmail). Rewriting it ourselves
keeps the result predictable: From becomes the login, the intended address becomes Reply-To so
answers still reach it. Account options: ``aliases = ["sales@acme.example"]`` lists addresses the
provider lets this login send as; ``rewrite_from = false`` turns the rule off.
"""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage


def aliases(account: AccountConfig) -> set[str]:
    raw = account.options.get("aliases", [])
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return {str(v).strip().lower() for v in values if str(v).strip()}


def login_address(account: AccountConfig) -> str | None:
    """The mailbox the account logs in as, when the login is an address."""
    login = account.username or account.from_email
    return login if "@" in login else None


def may_send_as(account: AccountConfig, address: str) -> bool:
    login = login_address(account)
    allowed = aliases(account) | ({login.lower()} if login else set())
    return address.lower() in allowed


def send_as_login(account: AccountConfig, message: RoutedMessage) -> None:
    """Rewrite From to the login unless it is the login or an alias; keep the original as Reply-To."""
    login = login_address(account)
    if login is None or account.options.get("rewrite_from") is False:
        return
    original = message.from_addr
    if may_send_as(account, original):
        return
    message.from_addr = login
    if message.reply_to is None:
        message.reply_to = original
    if message.envelope_from.lower() == original.lower():
        message.envelope_from = login
