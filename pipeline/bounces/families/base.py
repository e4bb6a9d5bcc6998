"""An MTA family: marker tables that recognise its bounces and steer the text scanner."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.bounces.findings import Finding
    from pipeline.bounces.mime import MailView

FLAGS = re.I | re.M


@dataclass(frozen=True)
class Marker:
    """Evidence: `where` is a lower-case header name, or "body"; `weight` adds to the score."""

    where: str
    pattern: str
    weight: int = 1

    def found(self, view: MailView, body: str) -> bool:
        regex = _compiled(self.pattern)
        if self.where == "body":
            return bool(regex.search(body))
        return any(regex.search(value) for value in view.header_all(self.where))


@dataclass(frozen=True)
class Family:
    """Tables for one MTA or provider; rows, not code, describe its format."""

    name: str
    markers: tuple[Marker, ...]
    begin: tuple[str, ...] = ()  # where its error report starts in the body
    cut: tuple[str, ...] = ()  # where the returned original message starts
    recipient_lines: tuple[str, ...] = ()  # extra line patterns with (?P<addr>) and optional (?P<diag>)
    reasons: tuple[tuple[str, str], ...] = ()  # (pattern, reason) on a recipient's diagnostic
    diag_before: bool = False  # the error text precedes the address (Lotus Notes)
    recipient_headers: tuple[str, ...] = ()  # headers naming the failed recipient, not us (dma's X-Original-To)
    custom: Callable[[MailView], list[Finding]] | None = field(default=None, compare=False)

    def score(self, view: MailView, body: str) -> int:
        return sum(m.weight for m in self.markers if m.found(view, body))

    def reason_for(self, text: str) -> str | None:
        for pattern, reason in self.reasons:
            if _compiled(pattern).search(text):
                return reason
        return None


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    regex = _CACHE.get(pattern)
    if regex is None:
        regex = _CACHE[pattern] = re.compile(pattern, FLAGS)
    return regex


def compiled(pattern: str) -> re.Pattern[str]:
    return _compiled(pattern)
