"""Yahoo Mail: smtp.mail.yahoo.com with an app password."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "yahoo"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Yahoo Mail",
        host="smtp.mail.yahoo.com",
        port=465,
        security=Security.TLS,
        auth_methods=("PLAIN", "LOGIN"),
        # Yahoo publishes no SMTP sending quota; about 500 messages a day is the ceiling commonly reported
        # before Yahoo blocks sending for a while. mailpipe starts there, at most 1/s.
        limits=Limits(per_second=1, per_day=500),
        max_recipients=100,  # commonly reported per-message cap; Yahoo publishes none
        notes=(
            "Create an app password (Yahoo Account Security → Generate app password); the normal password is refused.",
            "username is the full Yahoo address.",
            "From must be the Yahoo address (or an alias listed in options.aliases).",
            'Port 465 is implicit TLS (security = "tls"); 587 with STARTTLS also works.',
        ),
    ),
)
