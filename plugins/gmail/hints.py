"""What Gmail's failures mean and what to do about them."""

from pipeline.config import AccountConfig
from pipeline.config.oauth import AuthMethod
from pipeline.plugin_host.hints import Step, hint


def _username_not_address(account: AccountConfig) -> bool:
    return account.username is not None and "@" not in account.username


def _xoauth2(account: AccountConfig) -> bool:
    return account.auth_method == AuthMethod.XOAUTH2


HINTS = (
    hint(
        "Gmail wants an App Password (534 5.7.9): the account has 2-Step Verification on, so its normal password "
        "is refused; create an App Password (Google Account → Security → 2-Step Verification → App passwords) "
        'and use it as the password, or switch this mailbox to OAuth (auth_method = "xoauth2").',
        steps=[Step.AUTH],
        reply=r"\b534\b|5\.7\.9\b|application-specific password required",
        when=lambda a: not _xoauth2(a),
    ),
    hint(
        "Gmail refused the password (535 5.7.8 Username and Password not accepted): App Passwords exist only once 2-Step "
        "Verification is turned on (Google Account → Security → 2-Step Verification); turn it on, create an App "
        'Password and use that, or switch this mailbox to OAuth (auth_method = "xoauth2").',
        steps=[Step.AUTH],
        reply=r"\b535\b.*5\.7\.8|username and password not accepted|badcredentials",
        when=lambda a: not _xoauth2(a),
    ),
    hint(
        "Gmail refused the OAuth access token: the grant must cover https://mail.google.com/ and belong to "
        "{username}; if it was revoked, the mailbox owner must connect it again.",
        steps=[Step.AUTH],
        reply=r"\b535\b|5\.7\.8|invalid_grant",
        when=_xoauth2,
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
