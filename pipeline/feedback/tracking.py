"""Click tracking (per campaign, off by default): links in the HTML become signed redirect URLs.

``<a href="https://shop.example/x">`` → ``<a href="https://{tracking_domain}/c/{token}">``; the
token carries the event and the original URL under a MAC, so ``GET /c/{token}`` can only ever
redirect where the mail really linked. Only absolute http(s) links are rewritten (never mailto:,
anchors, or the unsubscribe link); an optional 1x1 open pixel is appended.
"""

from __future__ import annotations

import html as htmllib
import re

from pipeline.config import Config
from pipeline.feedback.tokens import LinkToken, TokenKind, signer_for
from pipeline.models import LeadEvent

MAX_TRACKED_URL = 2000
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def tracking_domain(event: LeadEvent, config: Config) -> str | None:
    """The route's own tracking domain (a customer's CNAME) or the ``[serve]`` default."""
    for route in config.routes:
        if route.match.matches(event.campaign, event.list_name):
            return route.tracking_domain or config.serve.tracking_domain
    return config.serve.tracking_domain


def is_trackable(url: str, config: Config) -> bool:
    if not url.lower().startswith(("http://", "https://")) or len(url) > MAX_TRACKED_URL:
        return False
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return False
    public = config.serve.public_url
    return not (public and url.startswith(public.rstrip("/") + "/u/"))


def rewrite_links(html: str, event: LeadEvent, config: Config) -> str:
    """The HTML with tracked links (and the open pixel when enabled), or unchanged when off."""
    domain = tracking_domain(event, config)
    secret = config.serve.secret
    if not config.tracking.tracks(event.campaign) or domain is None or secret is None:
        return html
    signer = signer_for(secret)

    def replace(match: re.Match[str]) -> str:
        url = htmllib.unescape(match.group(3)).strip()
        if not is_trackable(url, config):
            return match.group(0)
        token = signer.sign(LinkToken(TokenKind.CLICK, event.tenant, event.event_id, url=url))
        return f"{match.group(1)}{match.group(2)}https://{domain}/c/{token}{match.group(2)}"

    out = _HREF.sub(replace, html)
    if config.tracking.open_pixel:
        token = signer.sign(LinkToken(TokenKind.OPEN, event.tenant, event.event_id))
        pixel = f'<img src="https://{domain}/o/{token}" width="1" height="1" alt="" style="display:none">'
        found = list(_BODY_END.finditer(out))
        out = out[: found[-1].start()] + pixel + out[found[-1].start() :] if found else out + pixel
    return out
