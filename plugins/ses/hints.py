"""What Amazon SES's failures mean and what to do about them."""

from pipeline.plugin_host.hints import Step, hint

HINTS = (
    hint(
        "SES endpoints are per region: email-smtp.<region>.amazonaws.com with an SES region such as us-east-1 or "
        "eu-west-1 (this account: region = {region}).",
        steps=[Step.CONFIG, Step.DNS, Step.TCP],
    ),
    hint(
        "SES SMTP credentials are not your AWS access key and secret: create SMTP credentials in the SES "
        "console (SMTP settings), or derive the SMTP password from the IAM secret key with SES's SigV4 "
        "algorithm. The IAM user needs ses:SendRawEmail.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        "SES SMTP credentials are valid in one region only: the ones used here must come from {region}.",
        steps=[Step.AUTH],
        reply=r"\b535\b|authentication|credentials",
    ),
    hint(
        "{from_email} (and, while the account is in the SES sandbox, every recipient) must be a verified "
        "identity in {region}: verify it, or request production access to leave the sandbox.",
        steps=[Step.SEND],
        reply=r"not verified|identit|sandbox",
    ),
    hint(
        "The SES sending quota or rate is reached: raise it in the SES console (Account dashboard) and set "
        "limits.per_second / per_day to the new quota.",
        reply=r"quota exceeded|maximum sending rate|throttling",
    ),
)
