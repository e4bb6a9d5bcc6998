"""Twilio SendGrid's SMTP relay."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "sendgrid"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Twilio SendGrid",
        host="smtp.sendgrid.net",
        port=587,
        security=Security.STARTTLS,
        username="apikey",  # the literal string; the API key is the password
        auth_methods=("PLAIN", "LOGIN"),
        # SendGrid's SMTP docs ("Integrating with the SMTP API") limit 5,000 messages per connection and
        # 10,000 concurrent connections but give no per-second figure; the daily volume is the plan's
        # (Free: 100/day). 10/s is mailpipe's cautious start: set limits.per_day to your plan.
        limits=Limits(per_second=10),
        max_recipients=1000,  # SendGrid SMTP API: up to 1,000 recipients per message
        notes=(
            'Username is the literal string "apikey"; the password is an API key with Mail Send permission.',
            "Verify the sender first: Single Sender Verification or Domain Authentication.",
            "Ports 587, 25 and 2525 use STARTTLS; 465 is implicit TLS.",
            "Webhook events carry event_id and tenant from the X-SMTPAPI unique_args mailpipe adds.",
        ),
    ),
)
