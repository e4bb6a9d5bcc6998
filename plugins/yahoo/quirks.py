"""Yahoo quirks: From must be the mailbox (Yahoo answers ``553 From address not verified`` otherwise)."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.mailbox import send_as_login


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    send_as_login(account, message)
