"""Mailbox providers and senders with their own layouts (GMX, Yandex, SendGrid, PowerMTA, ...)."""

from __future__ import annotations

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

DRAGONFLY = Family(
    name="dragonfly",
    markers=(Marker("body", r"this is the dragonfly mail agent", 3),),
    recipient_lines=(r"error delivering your mail to\s*<(?P<addr>[^\s<>]+@[^\s<>]+)>",),
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

VERIZON = Family(
    name="verizon",
    markers=(Marker("from", r"@(?:[\w.-]+\.)?(?:vtext|vzwpix|verizon)\.", 2),),
)

JAPANESE_CARRIERS = Family(
    name="jp-carrier",
    markers=(
        Marker("from", r"@(?:[\w.-]+\.)?(?:ezweb\.ne\.jp|au\.com|biglobe\.ne\.jp|docomo\.ne\.jp|softbank\.ne\.jp|kddi\.com)", 2),
        Marker("body", r"(?:宛先|送信先).{0,20}(?:存在しません|見つかりません)", 1),
    ),
    reasons=((r"(?:宛先|送信先).{0,20}(?:存在しません|見つかりません)|unknown user", "user_unknown"),),
)
