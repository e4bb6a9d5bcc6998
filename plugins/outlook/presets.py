"""Microsoft 365 (Exchange Online) mailboxes through SMTP AUTH client submission."""

from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

NAME = "outlook"

PRESETS = (
    ProviderPreset(
        name=NAME,
        title="Microsoft 365",
        host="smtp.office365.com",
        port=587,
        security=Security.STARTTLS,
        auth_methods=("LOGIN", "PLAIN"),
        # "Exchange Online limits" (sending limits): 30 messages a minute through SMTP client submission
        # and 10,000 recipients a day per mailbox; one recipient per mailpipe message.
        limits=Limits(per_minute=30, per_day=10_000),
        max_recipients=500,  # Exchange Online default recipient limit per message
        notes=(
            "SMTP AUTH (Authenticated SMTP) must be enabled for the mailbox and not blocked by the tenant "
            "(Security defaults turn it off): error 5.7.139 otherwise.",
            "username is the mailbox address; with MFA an app password may be needed.",
            "Microsoft is phasing out Basic authentication for SMTP AUTH (off by default for existing tenants "
            "from the end of 2026); where it is off, password login fails and OAuth is required, which "
            "mailpipe does not do yet.",
            "From must be the mailbox or an address it has Send As rights for (options.aliases).",
            "Outlook.com consumer mailboxes use host smtp-mail.outlook.com instead.",
        ),
    ),
)
