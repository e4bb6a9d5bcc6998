"""What Yahoo Mail's failures mean and what to do about them."""

from pipeline.plugin_host.hints import Step, hint

HINTS = (
    hint(
        "Yahoo needs an app password for SMTP: Yahoo Account Security → Generate app password; the normal "
        "password is refused. username is the full Yahoo address.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        "Yahoo sends only as the mailbox: send from {username} (or an alias listed in options.aliases).",
        steps=[Step.SEND],
        reply=r"\b553\b|from address|not verified|sender",
    ),
    hint(
        "Yahoo limits how much a mailbox sends per day; wait for the block to lift and lower limits.per_day.",
        reply=r"\b554\b.*(limit|exceeded)|too many",
    ),
)
