"""RFC 2369 / RFC 8058 headers: a signed one-click unsubscribe URL (plus mailto when configured)."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.feedback.tokens import LinkToken, TokenKind, signer_for
from pipeline.models import LeadEvent

ONE_CLICK = "List-Unsubscribe=One-Click"


def unsubscribe_url(event: LeadEvent, config: Config) -> str | None:
    """``{public_url}/u/{token}``, or None when ``[serve] public_url`` is not configured."""
    serve = config.serve
    if serve.public_url is None or serve.secret is None:
        return None
    token = signer_for(serve.secret).sign(LinkToken(TokenKind.UNSUBSCRIBE, event.tenant, event.event_id, address=event.to))
    return f"{serve.public_url.rstrip('/')}/u/{token}"


def unsubscribe_headers(url: str, config: Config) -> dict[str, str]:
    targets = [f"<{url}>"]
    if config.serve.unsubscribe_mailto:
        targets.append(f"<mailto:{config.serve.unsubscribe_mailto}?subject=unsubscribe>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": ONE_CLICK}
