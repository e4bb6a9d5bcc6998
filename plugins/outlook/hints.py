"""What Microsoft 365's failures mean and what to do about them."""

from pipeline.plugin_host.hints import Step, hint

HINTS = (
    hint(
        "Basic authentication is disabled for this mailbox (535 5.7.139 / 550 5.7.30): switch this mailbox to OAuth "
        '(auth_method = "xoauth2", or connect it with POST /v1/tenants/{{tenant}}/accounts/{{name}}/oauth/start).',
        reply=(
            r"(?is)^(?!.*smtpclientauthentication)"
            r".*(?:5\.7\.139|5\.7\.30\b|basic authentication is (?:disabled|not supported))"
        ),
    ),
    hint(
        "SMTP AUTH is disabled for this mailbox or the whole tenant (5.7.139): in the Microsoft 365 admin centre, "
        "Users → the mailbox → Mail → Manage email apps → tick Authenticated SMTP; the tenant setting "
        "(Set-TransportConfig -SmtpClientAuthenticationDisabled $false) and Security defaults can also block it.",
        steps=[Step.AUTH],
        reply=r"5\.7\.139|SmtpClientAuthentication|security defaults",
    ),
    hint(
        "Microsoft refused the password (5.7.3 / 535): check the mailbox address and password; with MFA an app "
        "password is needed, and tenants that turned Basic authentication off for SMTP AUTH require OAuth "
        '(auth_method = "xoauth2").',
        steps=[Step.AUTH],
        reply=r"5\.7\.3|\b535\b|authentication unsuccessful",
    ),
    hint(
        "The mailbox may not send as {from_email} (5.2.252 SendAsDenied / 5.7.60): grant it Send As rights for "
        "that address, list the address in options.aliases, or send from the mailbox itself.",
        steps=[Step.SEND],
        reply=r"5\.2\.252|SendAsDenied|5\.7\.60|send as",
    ),
    hint(
        "Exchange Online allows 30 messages a minute and 10,000 recipients a day per mailbox; beyond that it "
        "rejects or delays submissions (4.3.2 / 5.2.2 / 5.7.708): keep limits.per_minute at 30 or below.",
        reply=r"4\.3\.2|5\.2\.2|5\.7\.708|submission quota|rate limit",
    ),
)
