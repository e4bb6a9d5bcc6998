"""What SendGrid's failures mean and what to do about them."""

from pipeline.config import AccountConfig
from pipeline.plugin_host.hints import Step, hint


def _username_is_not_apikey(account: AccountConfig) -> bool:
    return account.username is not None and account.username != "apikey"


HINTS = (
    hint(
        'SendGrid\'s SMTP username is the literal string "apikey", not {username}: remove username from the '
        "account (the preset sets it) and put the API key in password.",
        steps=[Step.AUTH],
        when=_username_is_not_apikey,
    ),
    hint(
        'The password must be a SendGrid API key (it starts with "SG.") with Mail Send permission; a deleted, '
        "restricted or mistyped key is refused with 535. Copy it without spaces or line breaks.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        "SendGrid accepts mail only from a verified sender: verify {from_email} under Settings → Sender "
        "Authentication (Single Sender Verification or Domain Authentication).",
        steps=[Step.SEND],
        reply=r"sender identity|from address|not verified|550",
    ),
    hint(
        "The SendGrid plan's credits or daily quota are used up: upgrade the plan or wait for the reset, and set "
        "limits.per_day to the plan's volume.",
        reply=r"credits|quota|exceeded",
    ),
    hint('Some hosts block 587 and 25; SendGrid also listens on 2525 (STARTTLS) and 465 (security = "tls").', steps=[Step.TCP]),
)
