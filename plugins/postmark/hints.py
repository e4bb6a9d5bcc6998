"""What Postmark's failures mean and what to do about them."""

from pipeline.config import AccountConfig
from pipeline.plugin_host.hints import Step, effective, hint


def _implicit_tls_port(account: AccountConfig) -> bool:
    return effective(account)["port"] == "465"


HINTS = (
    hint(
        "Postmark's SMTP login is the Server API Token as both username and password (Servers → your server → "
        "API Tokens), not the Account token and not your Postmark login.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials|token",
    ),
    hint(
        'Postmark has no implicit-TLS port: use port 587, 25 or 2525 with security = "starttls".',
        steps=[Step.TCP, Step.TLS, Step.BANNER],
        when=_implicit_tls_port,
    ),
    hint(
        "Postmark sends only from confirmed senders: confirm a Sender Signature for {from_email} or verify its "
        "domain (Sender Signatures in Postmark).",
        steps=[Step.SEND],
        reply=r"sender signature|not (confirmed|verified)|from",
    ),
    hint(
        "The message stream in options.message_stream must exist on this server; broadcast streams are sent "
        "through smtp-broadcasts.postmarkapp.com.",
        steps=[Step.SEND],
        reply=r"stream",
    ),
)
