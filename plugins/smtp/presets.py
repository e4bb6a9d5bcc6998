"""The generic SMTP preset: any server, nothing assumed but the submission port."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "smtp"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Any SMTP server",
        port=587,
        security=Security.STARTTLS,
        # No published limit for an arbitrary server: a conservative default the account overrides.
        limits=Limits(per_second=5),
        notes=(
            'Set host, port and security for your server; port 465 means implicit TLS (security = "tls").',
            'A local relay without TLS: security = "none", plus allow_plaintext_auth = true to log in.',
        ),
    ),
)
