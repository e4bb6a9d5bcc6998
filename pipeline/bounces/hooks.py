"""Core fallback for the `mailpipe_parse_bounce` hook (docs/architecture.md: "Plugins") and its caller."""

from __future__ import annotations

from email.message import Message
from typing import Any

import pluggy

from pipeline.bounces.mime import load_message
from pipeline.bounces.parse import parse_bounce
from pipeline.bounces.report import BounceReport
from pipeline.plugin_host.hookspecs import hookimpl


@hookimpl(trylast=True)
def mailpipe_parse_bounce(message: Message) -> BounceReport:
    """The RFC 3464 + MTA-family parser; any plugin hook runs before it."""
    return parse_bounce(message)


def classify_bounce_message(message: bytes | str | Message, pm: pluggy.PluginManager | None = None) -> BounceReport:
    """Run the plugin hook chain when a plugin manager is given, else the core parser."""
    parsed = load_message(message)
    if pm is None:
        return parse_bounce(parsed)
    result: Any = pm.hook.mailpipe_parse_bounce(message=parsed)
    if isinstance(result, BounceReport):
        return result
    return parse_bounce(parsed)
