"""Microsoft 365 (Exchange Online) mailboxes through SMTP AUTH client submission."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "outlook"
MICROSOFT_SCOPES = ("https://outlook.office.com/SMTP.Send", "offline_access")

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Microsoft 365",
        host="smtp.office365.com",
        port=587,
        security=Security.STARTTLS,
        auth_methods=("XOAUTH2", "LOGIN", "PLAIN"),
        oauth_scopes=MICROSOFT_SCOPES,
        # "Exchange Online limits" (sending limits): 30 messages a minute through SMTP client submission
        # and 10,000 recipients a day per mailbox; one recipient per mailpipe message.
        limits=Limits(per_minute=30, per_day=10_000),
        max_recipients=500,  # Exchange Online default recipient limit per message
        notes=(
            "SMTP AUTH (Authenticated SMTP) must be enabled for the mailbox and not blocked by the tenant "
            "(Security defaults turn it off): error 5.7.139 otherwise.",
            "username is the mailbox address; with MFA an app password may be needed.",
            "Microsoft is phasing out Basic authentication for SMTP AUTH (off by default for existing tenants "
            'from the end of 2026; 535 5.7.139 / 550 5.7.30): use OAuth, auth_method = "xoauth2" with '
            'oauth = { provider = "microsoft", … } (scopes https://outlook.office.com/SMTP.Send and '
            "offline_access; add https://outlook.office.com/IMAP.AccessAsUser.All for reply tracking).",
            "From must be the mailbox or an address it has Send As rights for (options.aliases).",
            "Outlook.com consumer mailboxes use host smtp-mail.outlook.com instead.",
        ),
    ),
)
