"""Bounces a person forwarded inline ("---- Forwarded message ----" + quoted headers) read
back as messages of their own."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.bounces.mime import MailView, load_message

MAX_FORWARDS = 3
_MARKER = re.compile(
    r"^[ \t>]*-{2,}[ \t]*(?:forwarded message|original message|begin forwarded message|weitergeleitete nachricht|"
    r"urspr.ngliche nachricht|message transf.r.|message d'origine|mensaje reenviado|mensaje original|"
    r"messaggio inoltrato|doorgestuurd bericht|転送されたメッセージ)[ \t]*-*[ \t]*$"
    r"|^[ \t>]*begin forwarded message:[ \t]*$",
    re.I | re.M,
)
_HEADER_LINE = re.compile(r"^(?:From|Date|Sent|Subject|To|Cc|Von|Datum|Betreff|An|De|Objet|Envoy.|Para|Asunto)\s*:", re.I)
_QUOTE = re.compile(r"^[ \t]*> ?", re.M)


def inline_forwards(view: MailView) -> list[Message]:
    """Each forwarded block whose first lines are headers, as a parsed message."""
    found: list[Message] = []
    for text in view.texts:
        for marker in _MARKER.finditer(text):
            block = _QUOTE.sub("", text[marker.end() :]).lstrip("\n")
            if not _HEADER_LINE.match(block):
                continue
            found.append(load_message(block))
            if len(found) >= MAX_FORWARDS:
                return found
    return found
