"""Postmark's SMTP service: the server token is both username and password."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "postmark"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Postmark",
        host="smtp.postmarkapp.com",
        port=587,
        security=Security.STARTTLS,
        auth_methods=("PLAIN", "LOGIN", "CRAM-MD5"),
        # Postmark publishes no numeric sending rate for SMTP; volume is the plan's monthly quota.
        # 10/s is mailpipe's cautious start: set limits to your plan.
        limits=Limits(per_second=10),
        max_recipients=50,  # Postmark: at most 50 recipients (To, Cc and Bcc) per message
        notes=(
            "Use the Server API Token as both username and password (set username to the token too).",
            "Broadcast (bulk) mail belongs on a broadcast stream: options.message_stream, and host "
            "smtp-broadcasts.postmarkapp.com.",
            "The From address needs a confirmed Sender Signature or a verified domain.",
            "Ports 587, 25 and 2525, all STARTTLS; Postmark has no implicit-TLS port.",
            "Webhook events carry event_id and tenant as Metadata, from X-PM-Metadata-* headers.",
        ),
    ),
)
