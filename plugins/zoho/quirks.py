"""Zoho quirks: From must be the mailbox or an alias (else ``553 Sender is not allowed to relay``)."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.mailbox import send_as_login


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    send_as_login(account, message)
