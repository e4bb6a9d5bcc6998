"""Mailgun's SMTP relay: one host per region (a domain lives in the US or the EU region)."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "mailgun"

_NOTES = (
    "Username and password are the sending domain's SMTP credentials (e.g. postmaster@mg.example.com), "
    "not the API key and not your Mailgun login.",
    'A domain created in the EU region needs region = "eu" (smtp.eu.mailgun.org).',
    "Sandbox domains deliver only to authorised recipients.",
    "Ports 587, 25 and 2525 use STARTTLS; 465 is implicit TLS.",
    "Webhook events carry event_id and tenant in user-variables, from the X-Mailgun-Variables header.",
)


def _preset(name: str, title: str, host: str) -> ProviderPreset:
    return ProviderPreset(
        name=name,
        title=title,
        host=host,
        port=587,
        security=Security.STARTTLS,
        auth_methods=("PLAIN", "LOGIN"),
        # Mailgun publishes no per-second SMTP limit; volume is the plan's (the free plan: 100/day).
        # 10/s is mailpipe's cautious start: set limits.per_day to your plan.
        limits=Limits(per_second=10),
        max_recipients=1000,  # Mailgun sending docs: at most 1,000 recipients per message
        notes=_NOTES,
    )


PRESETS = (
    _preset(NAME, "Mailgun (US region)", "smtp.mailgun.org"),
    _preset(f"{NAME}@us", "Mailgun (US region)", "smtp.mailgun.org"),
    _preset(f"{NAME}@eu", "Mailgun (EU region)", "smtp.eu.mailgun.org"),
)
