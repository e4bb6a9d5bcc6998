"""SES quirks: the configuration set (whose event destination feeds the webhook) and message tags."""

from __future__ import annotations

import re

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.headers import set_header

CONFIGURATION_SET = "X-SES-CONFIGURATION-SET"
MESSAGE_TAGS = "X-SES-MESSAGE-TAGS"
# SES MessageTag: ASCII letters, digits, underscore and dash only, at most 256 characters.
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def tags(message: RoutedMessage) -> dict[str, str]:
    """The tags SES can carry; a value it would reject is left out (the Message-ID still maps back)."""
    wanted = {"event_id": message.event.event_id, "tenant": message.event.tenant}
    return {name: value for name, value in wanted.items() if _TAG_VALUE.match(value)}


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    headers = message.message.headers
    configuration_set = account.options.get("configuration_set")
    if isinstance(configuration_set, str) and configuration_set:
        set_header(headers, CONFIGURATION_SET, configuration_set)
    found = tags(message)
    if found:
        set_header(headers, MESSAGE_TAGS, ", ".join(f"{k}={v}" for k, v in found.items()))
