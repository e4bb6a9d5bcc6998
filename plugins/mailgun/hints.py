"""What Mailgun's failures mean and what to do about them."""

from pipeline.config import AccountConfig
from pipeline.plugin_host.hints import Step, hint


def _us_host(account: AccountConfig) -> bool:
    return (account.region or "us").lower() == "us" and account.host is None


HINTS = (
    hint(
        "Mailgun wants the domain's SMTP credentials (Sending → Domain settings → SMTP credentials, e.g. "
        "postmaster@mg.example.com) — not the API key and not your Mailgun login.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        'If the domain was created in Mailgun\'s EU region, set region = "eu": EU credentials are refused by smtp.mailgun.org.',
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
        when=_us_host,
    ),
    hint(
        "Sandbox domains deliver only to authorised recipients: add the recipient under the sandbox's "
        "Authorized Recipients, or send from your own verified domain.",
        steps=[Step.SEND],
        reply=r"sandbox|authori[sz]ed recipients",
    ),
    hint(
        "The From domain of {from_email} must be a domain verified in this Mailgun account.",
        steps=[Step.SEND],
        reply=r"domain|not allowed|relay",
    ),
)
