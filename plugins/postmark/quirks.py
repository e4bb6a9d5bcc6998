"""Postmark quirks: the message stream, and Metadata so webhooks map back to the event."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage
from plugins.smtp.headers import set_header

STREAM = "X-PM-Message-Stream"
METADATA = "X-PM-Metadata-"
TAG = "X-PM-Tag"


def prepare(account: AccountConfig, message: RoutedMessage) -> None:
    headers = message.message.headers
    stream = account.options.get("message_stream")
    if isinstance(stream, str) and stream:
        set_header(headers, STREAM, stream)
    set_header(headers, METADATA + "event_id", message.event.event_id)
    set_header(headers, METADATA + "tenant", message.event.tenant)
    if message.event.campaign:
        set_header(headers, TAG, message.event.campaign)
