"""ACME Relay's connection settings and published limits."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "acme-relay"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="ACME Relay (example plugin)",
        host="smtp.acme-relay.example",
        port=2525,
        security=Security.STARTTLS,
        username="relay",
        limits=Limits(per_second=2, per_day=5000),  # ACME's (imaginary) published plan limits
        notes=("Installed by mailpipe-example-plugin.",),
    ),
)
