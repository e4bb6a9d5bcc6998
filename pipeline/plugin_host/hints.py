"""Troubleshooting hints for `accounts verify`: the table shape every plugin uses, and the generic ones.

A failure reaches ``mailpipe_connection_hints`` as ``"<step>: <exact reply or error>"``, e.g.
``"auth: 535 5.7.8 Username and Password not accepted."``. A provider plugin keeps a table of
:class:`Hint` rows (step, reply pattern, condition on the account) and returns the texts that
match; this module is registered as a built-in plugin with the provider-neutral rows, ``trylast``
so provider-specific advice is listed first.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.config import AccountConfig, resolve_account
from pipeline.errors import MailpipeError
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.presets import Security


class Step(enum.StrEnum):
    """The steps of a connection check, in order; the prefix of the ``error`` string."""

    CONFIG = "config"
    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    BANNER = "banner"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    SEND = "send"


@dataclass(frozen=True)
class Hint:
    """One troubleshooting line and when it applies.

    ``text`` may name ``{host}``, ``{port}``, ``{security}``, ``{username}``, ``{region}``,
    ``{from_email}`` and ``{provider}``: the account's effective values.
    """

    text: str
    steps: frozenset[Step] = frozenset()  # empty: any step
    pattern: re.Pattern[str] | None = None  # searched in the reply, case-insensitive
    when: Callable[[AccountConfig], bool] | None = None


def hint(
    text: str,
    *,
    steps: Iterable[Step] = (),
    reply: str | None = None,
    when: Callable[[AccountConfig], bool] | None = None,
) -> Hint:
    return Hint(text, frozenset(steps), re.compile(reply, re.IGNORECASE) if reply else None, when)


def split_error(error: str) -> tuple[str, str]:
    """``"auth: 535 ..."`` → ``("auth", "535 ...")``."""
    step, sep, reply = error.partition(": ")
    return (step.strip(), reply) if sep else ("", error)


def effective(account: AccountConfig) -> dict[str, str]:
    """The account's host, port and security after its preset, for hint texts (secrets untouched)."""
    from pipeline.plugin_host.manager import preset_for

    fields = {
        "host": account.host or "?",
        "port": str(account.port or "?"),
        "security": str(account.security or Security.STARTTLS),
        "username": account.username or account.from_email,
        "region": account.region or "?",
        "from_email": account.from_email,
        "provider": account.provider,
    }
    try:
        resolved = resolve_account(account.model_copy(update={"password": None}), preset_for(account))
    except MailpipeError:
        return fields
    fields.update(
        host=resolved.host,
        port=str(resolved.port),
        security=str(resolved.security),
        username=resolved.username or account.from_email,
    )
    return fields


def matching(table: Iterable[Hint], account: AccountConfig, error: str) -> list[str]:
    """The texts of every row of ``table`` that applies to this failure."""
    step, reply = split_error(error)
    fields: dict[str, str] | None = None
    out: list[str] = []
    for row in table:
        if row.steps and step not in row.steps:
            continue
        if row.pattern is not None and not row.pattern.search(reply):
            continue
        if row.when is not None and not row.when(account):
            continue
        fields = fields or effective(account)
        out.append(row.text.format(**fields))
    return out


def _security(account: AccountConfig) -> Security:
    return Security(effective(account)["security"])


GENERIC = (
    hint(
        "{host} does not resolve: check the host name for typos (and the region, if the provider has regions).", steps=[Step.DNS]
    ),
    hint(
        "Nothing accepts connections on {host}:{port}: check the port (587 = STARTTLS, 465 = implicit TLS, "
        "2525 is a common alternative) and that no firewall between you and the server blocks it.",
        steps=[Step.TCP],
        reply="refused",
    ),
    hint(
        "The connection to {host}:{port} timed out: outbound SMTP ports are often blocked by hosting "
        "providers and firewalls; try the provider's other port (587, 465 or 2525).",
        steps=[Step.TCP],
        reply="timed out|timeout",
    ),
    hint(
        'Port {port} answered in plain text, not TLS: it is a STARTTLS port. Set security = "starttls" '
        '(usually port 587), or use the implicit-TLS port (usually 465) with security = "tls".',
        steps=[Step.TLS],
        reply="wrong version number|record layer|unknown protocol|packet length too long",
        when=lambda a: _security(a) == Security.TLS,
    ),
    hint(
        "The server's certificate is not trusted for {host}: connect with the name on its certificate "
        "(not an IP address or an alias), or set ca_file for a private CA. verify_tls = false is for local "
        "relays only.",
        steps=[Step.TLS, Step.STARTTLS],
        reply="certificate|hostname mismatch|CERTIFICATE_VERIFY_FAILED",
    ),
    hint(
        "No greeting from {host}:{port}: a server on an implicit-TLS port waits for the TLS handshake first. "
        'Set security = "tls" (port 465 is implicit TLS), or use the provider\'s STARTTLS port (587).',
        steps=[Step.BANNER],
        reply="timed out|timeout|no greeting",
        when=lambda a: _security(a) != Security.TLS,
    ),
    hint(
        'The server on port {port} does not offer STARTTLS. Port 465 needs security = "tls"; a local relay '
        'without TLS needs security = "none" (and allow_plaintext_auth = true to log in).',
        steps=[Step.STARTTLS],
        reply="not offer|not supported",
    ),
    hint(
        'The server requires TLS before login: set security = "starttls" (port 587) or "tls" (port 465).',
        reply=r"\b530\b.*(starttls|tls)|must issue a starttls",
    ),
    hint(
        'mailpipe does not send a password over an unencrypted connection: use security = "starttls" or '
        '"tls", or set allow_plaintext_auth = true for a trusted local relay.',
        steps=[Step.AUTH],
        reply="unencrypted",
    ),
    hint(
        "Set both username and password: for Postmark both are the Server API Token; for Gmail, Outlook, "
        "Yahoo and Zoho the username is the full mailbox address.",
        steps=[Step.AUTH],
        reply="is not configured",
    ),
    hint(
        "The server offers no login (AUTH) on this connection: many servers offer it only after STARTTLS; "
        "check security, or drop username/password for a relay that authorises by IP address.",
        steps=[Step.AUTH],
        reply="no AUTH|AUTH extension",
    ),
    hint(
        "The server rejected the credentials: check the username (often the full email address, "
        "currently {username}) and re-copy the password without spaces or line breaks. Accounts with "
        "2-step verification usually need an app password.",
        steps=[Step.AUTH],
        reply=r"\b535\b|\b5\.7\.8\b|authentication (failed|unsuccessful)|credentials",
    ),
    hint(
        "The provider revoked this account's OAuth grant (invalid_grant: consent withdrawn, password changed or "
        "token expired): the mailbox owner must connect it again.",
        steps=[Step.AUTH],
        reply=r"invalid_grant",
    ),
    hint(
        "The OAuth token endpoint did not answer (down or slow): this is temporary; mail waits and retries.",
        steps=[Step.AUTH],
        reply=r"token endpoint .*(unreachable|timed out|HTTP 5|unavailable)",
    ),
    hint(
        "The provider refuses {from_email} as sender: verify that address (or its domain) in the "
        "provider's dashboard, or send from an address the login may use.",
        steps=[Step.SEND],
        reply=r"sender|from address|not (authori[sz]ed|allowed|verified|permitted)|5\.7\.1\b|\b553\b|send ?as",
    ),
    hint(
        "The server is limiting the rate of this account: lower limits.per_second / per_day for it, "
        "or ask the provider for a higher quota.",
        reply=r"\b(421|451|454)\b.*(rate|throttl|too many|limit)|4\.7\.0.*try again",
    ),
)


@hookimpl(trylast=True)
def mailpipe_connection_hints(account: AccountConfig, error: str) -> list[str]:
    return matching(GENERIC, account, error)
