"""Generic SMTP quirks: none by default; a mailbox server that checks the sender opts in to the From rule."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage

from .mailbox import send_as_login


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    if account.options.get("rewrite_from") is True:  # options.rewrite_from = true
        send_as_login(account, message)
