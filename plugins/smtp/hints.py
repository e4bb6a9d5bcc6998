"""Hints for the generic SMTP provider (the provider-neutral ones live in pipeline.hints)."""

from pipeline.hints import Step, hint

HINTS = (
    hint("If {host} belongs to a provider mailpipe knows (see `mailpipe providers`), set provider to its "
         "name: host, port, security, limits and troubleshooting come with it.",
         steps=[Step.DNS, Step.TCP, Step.TLS, Step.BANNER, Step.STARTTLS, Step.AUTH]),
)
