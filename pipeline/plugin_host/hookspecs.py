"""The hooks a mailpipe plugin may implement (docs/architecture.md: "Plugins").

Hooks are synchronous, do no network I/O, take keyword arguments and return data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from email.message import Message

    from pipeline.config import AccountConfig
    from pipeline.feedback.webhooks import WebhookSettings
    from pipeline.models import DeliveryEvent, RoutedMessage, SendReply, Verdict
    from pipeline.plugin_host.presets import ProviderPreset

PROJECT = "mailpipe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mailpipe_provider_presets() -> list[ProviderPreset]:
    """Return the provider presets this plugin supplies.

    Every plugin's list is merged; a later plugin may replace a preset by reusing its name.
    """


@hookspec
def mailpipe_prepare_message(account: AccountConfig, message: RoutedMessage) -> None:
    """Apply provider quirks to a routed message in place, before it is sent.

    Typical work: correlation headers so webhooks map back to the event
    (SendGrid ``X-SMTPAPI``, Mailgun ``X-Mailgun-Variables``, SES configuration set),
    or From rules (Gmail sends as the login or a verified alias).

    :param account: the account the message will be sent through.
    :param message: the routed message; change ``message.message.headers`` or ``from_addr``.
    """


@hookspec(firstresult=True)
def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
    """Classify an SMTP reply or transport error, or return None if it is not yours.

    The RFC 3463 / RFC 5321 classifier is the ``trylast`` fallback.

    :param account: the account that sent (None when unknown).
    :param reply: the server's reply or the transport error.
    """


@hookspec(firstresult=True)
def mailpipe_parse_webhook(
    provider: str, headers: dict[str, str], body: bytes, settings: WebhookSettings
) -> list[DeliveryEvent] | None:
    """Verify and parse a provider webhook request, or return None if the provider is not yours.

    Must check the signature (or credentials) before trusting anything, and raise
    ``pipeline.feedback.webhooks.WebhookRejected`` for a missing or bad signature, a stale timestamp or a
    replay (``settings.check_fresh``, ``settings.check_replay``), ``WebhookNotConfigured`` when
    its key is missing, ``WebhookPayloadError`` for an authentic but unreadable payload. The
    hook does no network I/O itself: the replay cache and certificate source come in ``settings``.

    :param provider: the ``{provider}`` part of ``POST /webhooks/{provider}``.
    :param headers: request headers, lower-cased names.
    :param body: the raw request body.
    :param settings: ``pipeline.feedback.webhooks.WebhookSettings``: the provider's ``[webhooks.<provider>]``
        table (``options``, secrets resolved), the replay window and current time, the replay
        cache (``seen``), the certificate source (``certificates``), the secret path segment
        (``path_token``) and ``subscribe_urls`` to report verified SNS subscription URLs in.
    """


@hookspec(firstresult=True)
def mailpipe_parse_bounce(message: Message) -> Any | None:
    """Parse a bounce / DSN mail into a ``BounceReport``, or return None if not recognised.

    The RFC 3464 parser is the ``trylast`` fallback.

    :param message: the parsed email message (``email.message.Message``).
    """


@hookspec
def mailpipe_connection_hints(account: AccountConfig, error: str) -> list[str]:
    """Return troubleshooting lines for a failed connection check.

    :param account: the account being verified.
    :param error: the failing step and the server's exact reply, e.g. ``"auth: 535 5.7.8 ..."``.
    """


@hookspec
def mailpipe_delivery_event(event: DeliveryEvent) -> None:
    """Observe a status change (sent, bounced, delivered, ...); the return value is ignored.

    :param event: the normalised delivery event.
    """
