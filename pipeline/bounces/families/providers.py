"""Mailbox providers and senders with their own layouts (GMX, Yandex, SendGrid, PowerMTA, ...)."""

from __future__ import annotations

from pipeline.bounces.addresses import ADDR
from pipeline.bounces.families.base import Family, Marker

GMX = Family(
    name="gmx",
    markers=(
        Marker("from", r"mailer-daemon@(?:[\w.-]+\.)?(?:gmx|web\.de|1und1|1and1|kundenserver|ionos)\.", 2),
        Marker("envelope-to", r".", 0),
        Marker("body", r"this message was created automatically by mail delivery software", 1),
    ),
    begin=(r"^a message that you sent could not be delivered",),
    cut=(r"^\s*-{3,}\s*the header of the original message is following",),
)

YANDEX = Family(
    name="yandex",
    markers=(Marker("from", r"mailer-daemon@(?:[\w.-]+\.)?yandex\.", 2),),
    begin=(r"^this is the mail system at host",),
)

MAILRU = Family(
    name="mailru",
    markers=(Marker("from", r"mailer-daemon@(?:[\w.-]+\.)?(?:mail\.ru|corp\.mail\.ru|list\.ru|inbox\.ru|bk\.ru)", 2),),
)

SENDGRID = Family(
    name="sendgrid",
    markers=(
        Marker("from", r"@sendgrid\.(?:net|com)", 1),
        Marker("body", r"this is an automatically generated message from sendgrid", 2),
    ),
)

MESSAGINGSERVER = Family(
    name="messagingserver",
    markers=(
        Marker("body", r"this report relates to a message you sent with the following header fields", 3),
        Marker("body", r"your message cannot be delivered to the following recipients", 1),
    ),
    begin=(r"your message cannot be delivered to the following recipients",),
)

APACHEJAMES = Family(
    name="apachejames",
    markers=(
        Marker("body", r"^\s*error message below:", 2),
        Marker("body", r"^\s*message details:", 1),
        Marker("received", r"james", 1),
    ),
    begin=(r"^\s*error:", r"^\s*error message below:", r"^\s*message details:"),
)

# DragonFly Mail Agent (dma): bounce.c writes one notice per failed recipient; net.c's error
# text follows ("<host> [<ip>] did not like our RCPT TO:" and the reply on the next line).
DRAGONFLY = Family(
    name="dragonfly",
    markers=(
        Marker("body", r"^this is the dragonfly mail agent", 3),
        Marker("received", r"\(dragonfly mail agent", 2),
        Marker("body", r"^there was an error delivering your mail to <", 1),
        Marker("subject", r"^mail delivery failed$", 0),
    ),
    begin=(r"^this is the dragonfly mail agent",),
    cut=(r"^\s*(?:original message follows|message headers follow)\.?\s*$",),
    recipient_lines=(rf"^\s*there was an error delivering your mail to\s*<(?P<addr>{ADDR})>\.?\s*$",),
    recipient_headers=("x-original-to",),
    reasons=((r"dns lookup failure: host \S+ not found", "host_unknown"),),
)

FACEBOOK = Family(
    name="facebook",
    markers=(Marker("from", r"@(?:[\w.-]+\.)?facebook\.com", 2),),
)

GOOGLEGROUPS = Family(
    name="googlegroups",
    markers=(
        Marker("body", r"google groups", 1),
        Marker("from", r"@googlegroups\.com", 2),
        Marker("body", r"you do not have permission to post to this group|your message was not delivered to the group", 1),
    ),
    reasons=((r"do not have permission to post|not delivered to the group", "rejected"),),
)

# Verizon Wireless gateways: vtext.com lists "RCPT TO:" under "Message details:", vzwpix.com
# quotes the original's "To:" under "Original Message:".
VERIZON = Family(
    name="verizon",
    markers=(
        Marker("from", r"@(?:[\w.-]+\.)?(?:vtext|vzwpix|verizon)\.", 2),
        Marker("received", r"\.(?:vtext|vzwpix)\.com", 1),
        Marker("body", r"^message could not be delivered to mobile", 2),
    ),
    begin=(r"^error:", r"^message could not be delivered to mobile"),
    recipient_lines=(rf"^\s*(?:rcpt to|to):\s*<?(?P<addr>{ADDR})>?\s*$",),
    reasons=((r"no valid recipients for this mm|no such user here", "user_unknown"),),
)

# au by KDDI (ezweb.ne.jp, au.com) and the other Japanese carriers.
JAPANESE_CARRIERS = Family(
    name="jp-carrier",
    markers=(
        Marker("from", r"@(?:[\w.-]+\.)?(?:ezweb\.ne\.jp|au\.com|biglobe\.ne\.jp|docomo\.ne\.jp|softbank\.ne\.jp|kddi\.com)", 2),
        Marker("from", r"@(?:[\w.-]+\.)?dion\.ne\.jp", 2),
        Marker("received", r"(?:ezweb\.ne\.jp|\.au\.com) \(", 1),
        Marker("body", r"^your mail (?:sent on|attempted to be delivered on):? ", 1),
        Marker("body", r"(?:宛先|送信先).{0,20}(?:存在しません|見つかりません)", 1),
    ),
    recipient_lines=(rf"^\s*could not be delivered to:\s*<(?P<addr>{ADDR})>\s*$",),
    reasons=(
        (r"(?:宛先|送信先).{0,30}(?:存在しません|存在しない|見つかりません)|unknown user", "user_unknown"),
        (r"as the remote domain doesn'?t exist", "host_unknown"),
        (r"as their mailbox is full", "mailbox_full"),
    ),
)

# Zoho Mail: one line per recipient, "<address> <what>, ERROR_CODE :<reply>, ERROR_CODE :<text>", or
# "[Status: Error, Address: <address>, ResponseCode <n>, , <text>]" after a retry timeout.
ZOHO = Family(
    name="zoho",
    markers=(
        Marker("x-zohomail", r".", 2),
        Marker("from", r"@(?:[\w.-]+\.)?zoho(?:mail)?\.", 1),
        Marker("body", r"error_code :\d{3}", 1),
    ),
    begin=(r"^this message was created automatically by mail delivery software",),
    cut=(r"^received: from mail\.zoho\.com by mx\.zohomail\.com",),
    recipient_lines=(
        rf"^\s*(?P<addr>{ADDR})\s+(?P<diag>[A-Za-z][^@]*?error_code\s*:.*)$",
        rf"^\s*\[status:[^,\]]*,\s*address:\s*<(?P<addr>{ADDR})>,\s*(?P<diag>.*)\]\s*$",
    ),
    reasons=((r"host not reachable", "expired"),),
)
