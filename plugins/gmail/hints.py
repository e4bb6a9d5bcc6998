"""What Gmail's failures mean and what to do about them."""

from pipeline.config import AccountConfig
from pipeline.plugin_host.hints import Step, hint


def _username_not_address(account: AccountConfig) -> bool:
    return account.username is not None and "@" not in account.username


HINTS = (
    hint(
        "Gmail refused the password: with 2-Step Verification on, Gmail needs an App Password (Google Account → "
        "Security → 2-Step Verification → App passwords), not the normal password. Without 2-Step "
        "Verification there are no App Passwords: turn it on first.",
        steps=[Step.AUTH],
        reply=r"\b53[45]\b|badcredentials|application-specific|not accepted",
    ),
    hint(
        "Gmail's username is the full address (name@gmail.com or your Workspace address), not {username}.",
        steps=[Step.AUTH],
        when=_username_not_address,
    ),
    hint(
        "A Workspace admin can turn off App Passwords or SMTP access for the organisation: ask them if an App "
        "Password is still refused.",
        steps=[Step.AUTH],
        reply=r"\b53[45]\b|badcredentials|not accepted",
        when=lambda a: a.options.get("workspace") is True,
    ),
    hint(
        'Gmail sends only as {username} or a verified "Send mail as" alias: add the address in Gmail settings '
        "(Accounts → Send mail as) and list it in options.aliases.",
        steps=[Step.SEND],
        reply=r"sender|from|alias",
    ),
    hint(
        "Gmail's daily sending limit is reached (500 a day for consumer accounts, 2,000 for Workspace): sending "
        "resumes within 24 hours; spread the volume over more accounts of the route.",
        reply=r"daily user sending (quota|limit)|5\.4\.5|sending limit",
    ),
)
