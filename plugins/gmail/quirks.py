"""Gmail quirks: From must be the login or a verified alias (Gmail rewrites anything else itself)."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.mailbox import send_as_login


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    send_as_login(account, message)
