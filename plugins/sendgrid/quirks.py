"""SendGrid quirks: X-SMTPAPI ``unique_args`` so Event Webhook posts map back to the event."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.headers import dump_json, json_header, set_header

HEADER = "X-SMTPAPI"


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    headers = message.message.headers
    data = json_header(headers, HEADER)
    unique = data.get("unique_args")
    unique = unique if isinstance(unique, dict) else {}
    unique.update(event_id=message.event.event_id, tenant=message.event.tenant)
    data["unique_args"] = unique
    set_header(headers, HEADER, dump_json(data))
