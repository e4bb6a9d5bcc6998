"""Zoho Mail: one SMTP host per data centre; the account's region picks it."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "zoho"

# Zoho Mail data centres (the domain mail.zoho.<x> redirects to): region → SMTP host.
REGIONS = {
    "us": "smtp.zoho.com",
    "eu": "smtp.zoho.eu",
    "in": "smtp.zoho.in",
    "au": "smtp.zoho.com.au",
    "jp": "smtp.zoho.jp",
    "ca": "smtp.zohocloud.ca",
    "sa": "smtp.zoho.sa",
    "cn": "smtp.zoho.com.cn",
}

_NOTES = (
    'Use the host of your data centre: region = "eu", "in", "au", "jp", "ca", "sa" or "cn" '
    "(default: US, smtp.zoho.com); a wrong data centre fails like a wrong password.",
    "Paid organisation accounts may use smtppro.zoho.<domain>: set host to override.",
    "username is the full address; with two-factor authentication use an application-specific password.",
    "From must be the mailbox or one of its aliases (options.aliases).",
    "Port 587 uses STARTTLS; 465 is implicit TLS.",
)


def _preset(name: str, title: str, host: str) -> ProviderPreset:
    return ProviderPreset(
        name=name,
        title=title,
        host=host,
        port=587,
        security=Security.STARTTLS,
        auth_methods=("PLAIN", "LOGIN"),
        # Zoho Mail admin help "Rates and limits": external sending is adjusted per sender between 50 and
        # 500 an hour; mailpipe starts at the floor, 50/hour, at most 1/s. Raise per_hour as Zoho allows.
        limits=Limits(per_second=1, per_hour=50),
        max_recipients=100,  # Zoho: 100 external recipients per message on the free plan (150 paid)
        notes=_NOTES,
    )


PRESETS = (
    _preset(NAME, "Zoho Mail (US)", REGIONS["us"]),
    *(_preset(f"{NAME}@{region}", f"Zoho Mail ({region.upper()})", host) for region, host in REGIONS.items()),
)
