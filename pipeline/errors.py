"""One error hierarchy under one root, as Dramatiq does."""

from __future__ import annotations


class MailpipeError(Exception):
    """Root of every error mailpipe raises on purpose."""


class ConfigError(MailpipeError):
    """The configuration is invalid; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) if problems else "invalid configuration")


class SecretError(ConfigError):
    """A secret reference (env:NAME, file:PATH) could not be resolved."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


class InvalidEvent(MailpipeError):
    """A lead event failed validation; `errors` names each field."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


class RenderError(MailpipeError):
    """A template is missing, raised, or needs a variable the lead does not have."""


class HeaderInjection(MailpipeError):
    """A header value carried CR, LF or NUL."""


class MessageTooLarge(MailpipeError):
    """A rendered message exceeds the configured size cap."""


class PluginError(MailpipeError):
    """A plugin failed to load or implements an unknown hook."""
