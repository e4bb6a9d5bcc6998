"""One-click unsubscribe and click tracking through a real server: signed links in, state changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Config
from pipeline.context import build_context
from pipeline.models import LeadEvent
from pipeline.stages.render import render
from pipeline.state.status import StatusStore, Transition
from pipeline.state.suppression import SuppressionStore

HTML = '<p><a href="https://shop.example/sale?x=1&amp;y=2">Sale</a></p>'


def sent_event(config: Config, client: redis.Redis, **fields: Any) -> LeadEvent:
    """An event that went out: accepted, rendered, final outcome `sent`."""
    event = LeadEvent.model_validate(
        {"event_id": "u-1", "to": "reader@receiver.example", "subject": "Hi", "html": HTML, **fields}
    )
    status = StatusStore(client)
    status.accept([event])
    status.record([Transition(event.tenant, event.event_id, "sent", {"stage": "classify"})])
    return event


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_an_email_clients_one_click_post_suppresses_the_reader_and_records_the_unsubscribe(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, redis_client: redis.Redis
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    event = sent_event(config, redis_client)
    link = render(event, build_context(config)).unsubscribe_url
    assert link is not None
    path = link.removeprefix(config.serve.public_url or "")
    page = client.get(f"{url}{path}")
    assert page.status_code == 200 and 'method="post"' in page.text and "reader@receiver.example" in page.text
    assert SuppressionStore(redis_client).lookup("default", ["reader@receiver.example"]) == [None]  # GET changes nothing

    response = client.post(
        f"{url}{path}", content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    found = SuppressionStore(redis_client).lookup("default", ["reader@receiver.example"])[0]
    assert found is not None and found.reason == "unsubscribed" and found.source == "unsubscribe"
    status = StatusStore(redis_client).get("default", "u-1")
    assert status is not None and status.outcome == "sent" and status.state == "unsubscribed"
    assert [h["state"] for h in status.history] == ["accepted", "sent", "unsubscribed"]


def test_a_tampered_unsubscribe_token_is_404_and_suppresses_nobody(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, redis_client: redis.Redis
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    link = render(sent_event(config, redis_client), build_context(config)).unsubscribe_url
    assert link is not None
    token = link.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    for bad in (f"{payload[:-2]}xx.{mac}", f"{payload}.{mac[::-1]}", "nonsense", f"{payload}.{mac}.x"):
        assert client.post(f"{url}/u/{bad}", content=b"List-Unsubscribe=One-Click").status_code == 404
        assert client.get(f"{url}/u/{bad}").status_code == 404
    assert SuppressionStore(redis_client).count("default") == 0


def test_a_tracked_click_redirects_302_to_the_original_link_and_is_recorded_and_counted(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, redis_client: redis.Redis
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    event = sent_event(config, redis_client, campaign="spring")
    html = render(event, build_context(config)).html or ""
    token = re.findall(r"https://click\.acme\.example/c/([^\"']+)", html)[0]
    labels = {"source": "click", "event": "clicked", "matched": "yes"}
    before = metric(client.get(f"{url}/metrics/").text, "mailpipe_feedback_events_total", **labels)

    response = client.get(f"{url}/c/{token}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/sale?x=1&y=2"
    status = StatusStore(redis_client).get("default", "u-1")
    assert status is not None and status.outcome == "sent"
    clicked = [h for h in status.history if h["state"] == "clicked"]
    assert len(clicked) == 1 and clicked[0]["details"] == {"url": "https://shop.example/sale?x=1&y=2"}
    after = metric(client.get(f"{url}/metrics/").text, "mailpipe_feedback_events_total", **labels)
    assert after == before + 1


def test_a_tampered_or_foreign_click_token_is_404_so_there_is_no_open_redirect(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, redis_client: redis.Redis
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    event = sent_event(config, redis_client, campaign="spring")
    message = render(event, build_context(config))
    token = re.findall(r"https://click\.acme\.example/c/([^\"']+)", message.html or "")[0]
    payload, mac = token.split(".")
    unsubscribe_token = (message.unsubscribe_url or "").rsplit("/", 1)[1]
    for bad in (f"{payload}A.{mac}", f"{payload}.{mac[:-1]}", unsubscribe_token, "x.y"):
        response = client.get(f"{url}/c/{bad}")
        assert response.status_code == 404 and "location" not in response.headers
    status = StatusStore(redis_client).get("default", "u-1")
    assert status is not None and "clicked" not in [h["state"] for h in status.history]


def test_the_open_pixel_is_a_gif_and_records_an_open(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, redis_client: redis.Redis
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    html = render(sent_event(config, redis_client, campaign="spring"), build_context(config)).html or ""
    token = re.findall(r"https://click\.acme\.example/o/([^\"']+)", html)[0]
    response = client.get(f"{url}/o/{token}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    status = StatusStore(redis_client).get("default", "u-1")
    assert status is not None and status.state == "opened" and status.outcome == "sent"
