"""What render adds for the HTTP edge: List-Unsubscribe (RFC 8058) and tracked links, signed."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable

import pytest

from pipeline.config import Config
from pipeline.context import build_context
from pipeline.feedback.tokens import BadToken, LinkToken, TokenKind, TokenSigner, signer_for
from pipeline.models import LeadEvent, RoutedMessage
from pipeline.smtp.mime import build_message
from pipeline.stages.render import render

HTML = (
    '<html><body><p>Hi. <a href="https://shop.example/sale?a=1&amp;b=2">Sale</a> '
    '<a href=\'mailto:x@acme.example\'>Mail</a> <a href="#top">Top</a> <a class="x" HREF="http://old.example/">Old</a></p></body></html>'
)


def lead(**fields: object) -> LeadEvent:
    base: dict[str, object] = {"event_id": "links-1", "to": "Reader@Receiver.example", "subject": "Hi", "html": HTML}
    return LeadEvent.model_validate(base | fields)


def routed(message_config: Config, event: LeadEvent) -> RoutedMessage:
    message = render(event, build_context(message_config))
    return RoutedMessage(
        message=message,
        account="gamma",
        route="default",
        from_addr="gamma@sender.example",
        envelope_from="gamma@sender.example",
        first_attempt_at=0.0,
    )


def test_render_adds_one_click_list_unsubscribe_headers_whose_url_survives_onto_the_wire(
    serve_config: Callable[..., Config],
) -> None:
    config = serve_config()
    message = routed(config, lead()).message
    assert message.unsubscribe_url is not None and message.unsubscribe_url.startswith("https://mail.acme.example/u/")
    assert (
        message.headers["List-Unsubscribe"]
        == f"<{message.unsubscribe_url}>, <mailto:unsubscribe@acme.example?subject=unsubscribe>"
    )
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    wire = build_message(routed(config, lead()), max_bytes=1_000_000)
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert str(parsed["List-Unsubscribe"]).startswith(f"<{message.unsubscribe_url}>")
    token = message.unsubscribe_url.rsplit("/", 1)[1]
    assert config.serve.secret is not None
    found = signer_for(config.serve.secret).verify(token, TokenKind.UNSUBSCRIBE)
    assert (found.tenant, found.event_id, found.address) == ("default", "links-1", "Reader@receiver.example")


def test_without_a_public_url_render_adds_no_unsubscribe_headers(serve_config: Callable[..., Config]) -> None:
    config = serve_config()
    config = config.model_copy(update={"serve": config.serve.model_copy(update={"public_url": None})})
    message = render(lead(), build_context(config))
    assert message.unsubscribe_url is None and "List-Unsubscribe" not in message.headers


def test_a_tracked_campaign_gets_its_http_links_signed_and_the_text_part_keeps_the_originals(
    serve_config: Callable[..., Config],
) -> None:
    config = serve_config()
    message = render(lead(campaign="spring"), build_context(config))
    assert message.html is not None
    tracked = re.findall(r'href=["\']https://click\.acme\.example/c/([^"\']+)["\']', message.html, re.I)
    assert len(tracked) == 2
    assert config.serve.secret is not None
    signer = signer_for(config.serve.secret)
    urls = [signer.verify(t, TokenKind.CLICK).url for t in tracked]
    assert urls == ["https://shop.example/sale?a=1&b=2", "http://old.example/"]
    assert "mailto:x@acme.example" in message.html and 'href="#top"' in message.html
    assert re.search(r'<img src="https://click\.acme\.example/o/[^"]+" width="1" height="1"[^>]*></body>', message.html)
    assert "shop.example/sale" in message.text and "click.acme.example" not in message.text


def test_an_untracked_campaign_keeps_its_links_and_a_route_may_use_its_own_tracking_domain(
    serve_config: Callable[..., Config],
) -> None:
    config = serve_config(
        '\n[[routes]]\nname = "eu"\nmatch = { campaign = "spring" }\naccounts = ["alpha"]\ntracking_domain = "links.eu.example"\n'
    )
    plain = render(lead(campaign="autumn"), build_context(config))
    assert plain.html == HTML
    tracked = render(lead(campaign="spring"), build_context(config))
    assert tracked.html is not None and tracked.html.count("https://links.eu.example/c/") == 2


@pytest.mark.parametrize("kind", [TokenKind.CLICK, TokenKind.OPEN])
def test_a_token_verifies_only_as_its_own_kind_and_only_unchanged(kind: TokenKind) -> None:
    from pydantic import SecretStr

    signer = TokenSigner(SecretStr("k" * 32))
    token = signer.sign(LinkToken(kind, "default", "e1", url="https://a.example/"))
    assert signer.verify(token, kind).url == "https://a.example/"
    other = TokenKind.UNSUBSCRIBE
    with pytest.raises(BadToken):
        signer.verify(token, other)
    payload, mac = token.split(".")
    forged = LinkToken(kind, "default", "e1", url="https://evil.example/")
    forged_payload = TokenSigner(SecretStr("other-secret")).sign(forged).split(".")[0]
    for bad in (f"{forged_payload}.{mac}", f"{payload}.{mac[:-2]}AA", f"{payload}x.{mac}", token + ".", "", "a" * 9000):
        with pytest.raises(BadToken):
            signer.verify(bad, kind)
    assert "k" * 32 not in repr(signer)
