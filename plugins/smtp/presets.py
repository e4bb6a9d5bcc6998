from pipeline.providers import Limits, ProviderPreset, Security

PRESETS = (
    ProviderPreset(
        name="smtp",
        title="Any SMTP server",
        port=587,
        security=Security.STARTTLS,
        # No published limit for an arbitrary server: a conservative default the account overrides.
        limits=Limits(per_second=5),
        notes=("Set host, port and security for your server; port 465 means implicit TLS.",),
    ),
)
