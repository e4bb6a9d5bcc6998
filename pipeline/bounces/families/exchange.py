"""Microsoft Exchange 2003/2007+ and Exchange Online (Office 365) NDRs."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

# Exchange enhanced-code subjects (RESOLVER.*, QUEUE.*, STOREDRV.*) → reason.
_NDR_CODES: tuple[tuple[str, str], ...] = (
    (r"resolver\.adr\.(?:ex)?recip(?:ient)?notfound|recipnotfound", "user_unknown"),
    (r"smtpsend\.dns\.nonexistentdomain|dns\.nonexistentdomain", "host_unknown"),
    (r"smtpsend\.dns\.mxloopback", "network_error"),
    (r"resolver\.adr\.badprimary|resolver\.adr\.invalidinsmtp|resolver\.adr\.ambiguous", "system_error"),
    (r"resolver\.adr\.reciplimit", "too_many_conn"),
    (r"resolver\.rst\.authrequired", "security_error"),
    (r"resolver\.rst\.notauthorized|sendasdenied|storedrv\.submission\.exception:sendas", "rejected"),
    (r"resolver\.rst\.recipsizelimit", "exceed_limit"),
    (r"resolver\.rst\.sendsizelimit|message too large|5\.3\.4", "mesg_too_big"),
    (r"queue\.expired", "expired"),
    (r"mailbox ?full|quotaexceeded|recipient'?s mailbox is full|mailbox has exceeded", "mailbox_full"),
    (r"traffic not accepted from this ip|banned sending ip|5\.7\.(?:606|607|608|708|750)\b", "blocked"),
    (r"ip is on .{0,40}block list|part of their network is on our block list", "blocked"),
    (r"smtpclientauthentication is disabled|5\.7\.139\b", "security_error"),
    (r"5\.7\.(?:509|510|515)\b|dmarc|spf", "auth_failure"),
    (r"5\.4\.(?:1|316)\b.*recipient address rejected: access denied", "user_unknown"),
)

# Exchange 2003 "MSEXCH:IMS ... (000C05A6)" diagnostic codes.
_MSEXCH_CODES: tuple[tuple[str, str], ...] = (
    (r"\(000c05a6\)", "user_unknown"),
    (r"\((?:00010256|000d06b5)\)", "system_error"),
    (r"\(00120270\)", "network_error"),
    (r"\((?:00050311|000502cc)\)", "content_error"),
    (r"\(000b0981\)", "security_error"),
    (r"\(000c0595\)", "filtered"),
    (r"\(000b099c\)|\(000b09aa\)|\(000b09b6\)", "on_hold"),
)

EXCHANGE = Family(
    name="exchange",
    markers=(
        Marker(
            "subject",
            r"^(?:undeliverable|undelivered|non remis|non_remis_|unzustellbar|onbestelbaar|"
            r"no entregable|non recapitabile|nicht zustellbar|niet bezorgbaar|olevererbart)\s*:",
            2,
        ),
        Marker(
            "body",
            r"^\s*(?:diagnostic information for administrators|informations de diagnostic pour les administrateurs|"
            r"diagnoseinformationen f.r administratoren)",
            2,
        ),
        Marker(
            "body",
            r"delivery has failed to these recipients or groups|"
            r"your message (?:to .{1,100} )?couldn't be delivered",
            2,
        ),
        Marker("body", r"^\s*(?:generating server|serveur de g.n.ration|generierender server)\s*:", 1),
        Marker("x-ms-exchange-message-is-ndr", r".", 2),
        Marker("content-language", r"^[a-z]{2}(?:-[A-Z]{2})?$", 0),
        Marker("x-ms-exchange-crosstenant-originalarrivaltime", r".", 1),
    ),
    cut=(r"^\s*(?:original message headers|en-t.tes de message d'origine|urspr.ngliche nachrichtenkopfzeilen)\s*:",),
    recipient_lines=(
        r"^\s*(?P<addr>[^\s<>()@]+@[^\s<>()@]+\.[A-Za-z]{2,})\s*$",
        r"^.*?\s\((?P<addr>[^\s<>()@]+@[^\s<>()@]+\.[A-Za-z]{2,})\)\s*$",
        r"^\s*(?P<addr>[^\s<>()@]+@[^\s<>()@]+\.[A-Za-z]{2,})\s*<mailto:[^>]+>\s*$",
    ),
    reasons=_NDR_CODES,
)

EXCHANGE2003 = Family(
    name="exchange2003",
    markers=(
        Marker("x-ms-embedded-report", r".", 2),
        Marker("x-mailer", r"^(?:internet mail service \(|microsoft exchange server internet mail connector)", 2),
        Marker("x-mimeole", r"^produced by microsoft exchange", 2),
        Marker("received", r" with internet mail service \(", 2),
        Marker("body", r"did not reach the following recipient\(s\)", 1),
    ),
    begin=(r"^\s*your message\s*$", r"did not reach the following recipient"),
    cut=(r"^Content-Type:\s*message/rfc822",),
    reasons=_MSEXCH_CODES + _NDR_CODES,
)
