"""Amazon SES SMTP interface: one endpoint per AWS region, region-specific SMTP credentials."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "ses"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Amazon SES",
        host="email-smtp.{region}.amazonaws.com",
        port=587,
        security=Security.STARTTLS,
        requires_region=True,
        auth_methods=("PLAIN", "LOGIN"),
        # "Service quotas in Amazon SES": a new account is in the sandbox, 200 messages per 24 hours and
        # 1 per second. Out of the sandbox the quota is per account and region (SES console → Account
        # dashboard): set limits to it.
        limits=Limits(per_second=1, per_day=200),
        max_recipients=50,  # SES: up to 50 recipients per message
        notes=(
            "region is required (us-east-1, eu-west-1, ...): hosts and SMTP credentials are per region.",
            "The SMTP password is not the AWS secret access key: create SMTP credentials in the SES console "
            "(or derive the password from an IAM key with ses:SendRawEmail permission).",
            "In the sandbox, sender and recipients must be verified identities; request production access to lift it.",
            "options.configuration_set names the configuration set whose event destination feeds the webhook.",
            "Ports 587, 25 and 2587 use STARTTLS; 465 and 2465 are implicit TLS.",
        ),
    ),
)
