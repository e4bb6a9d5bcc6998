"""Gmail and Google Workspace mailboxes through smtp.gmail.com."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "gmail"

GOOGLE_SCOPES = ("https://mail.google.com/",)

_NOTES = (
    'Prefer OAuth: auth_method = "xoauth2" with oauth = { provider = "google", … } (scope '
    "https://mail.google.com/), or connect it through POST /v1/tenants/{tenant}/accounts/{name}/oauth/start.",
    "With a password: turn on 2-Step Verification and create an App Password (Google Account → Security → "
    "App passwords); the normal password is refused (Workspace stopped password SMTP on 30 Sept 2024).",
    "username is the full Gmail or Workspace address.",
    'Gmail sends only as the login or a verified "Send mail as" alias: list aliases in options.aliases; '
    "any other From becomes the login, the original kept as Reply-To.",
    "options.workspace = true selects Google Workspace limits.",
    "Port 587 uses STARTTLS; 465 is implicit TLS.",
)

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Gmail (consumer)",
        host="smtp.gmail.com",
        port=587,
        security=Security.STARTTLS,
        auth_methods=("XOAUTH2", "PLAIN", "LOGIN"),
        oauth_scopes=GOOGLE_SCOPES,
        # Google Help "Limits for sending & getting mail": about 500 recipients a day for a consumer
        # account. No per-second figure is published: 1/s is mailpipe's cautious default.
        limits=Limits(per_second=1, per_day=500),
        max_recipients=100,  # Google: 100 recipients per message sent through smtp.gmail.com
        notes=_NOTES,
    ),
    ProviderPreset(
        name=f"{NAME}+workspace",
        title="Google Workspace",
        host="smtp.gmail.com",
        port=587,
        security=Security.STARTTLS,
        auth_methods=("XOAUTH2", "PLAIN", "LOGIN"),
        oauth_scopes=GOOGLE_SCOPES,
        # Google Workspace Admin Help "Gmail sending limits in Google Workspace": 2,000 messages a day
        # (500 during a trial; set limits.per_day = 500 then). 1/s as for consumer Gmail.
        limits=Limits(per_second=1, per_day=2000),
        max_recipients=100,
        notes=_NOTES,
    ),
)
