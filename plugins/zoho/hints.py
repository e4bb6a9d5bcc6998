"""What Zoho Mail's failures mean and what to do about them."""

from pipeline.plugin_host.hints import Step, hint

HINTS = (
    hint(
        "Zoho accounts live in one data centre: the SMTP host must match it (the address mail.zoho.* redirects "
        'you to). Set region ("eu", "in", "au", ...) — a wrong data centre fails like a wrong password.',
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        "With two-factor authentication on, Zoho needs an application-specific password (My Account → Security → "
        "App Passwords); IMAP/SMTP access must be enabled for the mailbox.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        "Zoho sends only as the mailbox or its aliases: list permitted addresses in options.aliases, or send from {username}.",
        steps=[Step.SEND],
        reply=r"relay|sender|not allowed",
    ),
)
