"""Mailgun quirks: X-Mailgun-Variables, echoed as user-variables on every webhook event."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.headers import dump_json, json_header, set_header

HEADER = "X-Mailgun-Variables"


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    headers = message.message.headers
    data = json_header(headers, HEADER)
    data.update(event_id=message.event.event_id, tenant=message.event.tenant)
    set_header(headers, HEADER, dump_json(data))
