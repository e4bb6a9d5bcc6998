"""render: lead event → rendered message. Sandboxed Jinja2, StrictUndefined, Message-ID fixed here."""

from __future__ import annotations

from typing import Any

from pipeline.context import StageContext
from pipeline.errors import RenderError
from pipeline.feedback.tracking import rewrite_links
from pipeline.models import LeadEvent, RecipientEvent, RenderedMessage, RouteRequest
from pipeline.smtp.htmltext import rendered_html_to_text
from pipeline.smtp.list_unsubscribe import unsubscribe_headers, unsubscribe_url
from pipeline.smtp.mime import message_id_for
from pipeline.stages.batch import INFRASTRUCTURE_ERRORS, DeadLetter, Forward, Handled
from pipeline.templates import TemplateSource, render_string

STAGE = "render"


def template_context(event: LeadEvent) -> dict[str, Any]:
    return {
        **event.data,
        "lead": event.data,
        "email": event.to,
        "to_name": event.to_name,
        "campaign": event.campaign,
        "list": event.list_name,
        "tags": event.tags,
    }


def render(event: LeadEvent, ctx: StageContext) -> RenderedMessage:
    source = (
        ctx.templates.load(event.template)
        if event.template
        else TemplateSource(subject=event.subject, html=event.html, text=event.text)
    )
    limit = ctx.config.templates.max_output_chars
    context = template_context(event)
    subject = render_string(source.subject or "", context, html=False, limit=998, part="subject").strip()
    if "\n" in subject or "\r" in subject:
        raise RenderError("subject: rendered subject contains a line break")
    html = render_string(source.html, context, html=True, limit=limit, part="html") if source.html else None
    if source.text:
        text = render_string(source.text, context, html=False, limit=limit, part="text")
    else:
        text = rendered_html_to_text(html or "")
    if html is not None:
        html = rewrite_links(html, event, ctx.config)  # after the text part: it keeps the original links
    unsubscribe = unsubscribe_url(event, ctx.config)
    return RenderedMessage(
        event=event,
        subject=subject,
        html=html,
        text=text,
        headers=unsubscribe_headers(unsubscribe, ctx.config) if unsubscribe else {},
        message_id=message_id_for(event.tenant, event.event_id, ctx.config.message_id_domain()),
        unsubscribe_url=unsubscribe,
    )


def handle(events: list[LeadEvent], ctx: StageContext) -> Handled:
    handled = Handled()
    for event in events:
        try:
            message = render(event, ctx)
        except RenderError as exc:  # the event can never be rendered as it is: rejected
            rejected = DeadLetter(event.tenant, event.event_id, STAGE, str(exc), event.to_json(), RecipientEvent.REJECTED)
            handled.dead.append(rejected)
            continue
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # a bug or a plugin's error with this one event: it fails alone
            handled.fail(STAGE, event, exc)
            continue
        delay = max(0.0, event.send_at.timestamp() - ctx.clock()) if event.send_at else 0.0
        handled.forwards.append(Forward("route", RouteRequest(message=message).to_json(), delay))
    return handled


def decode(raw: str) -> LeadEvent:
    return LeadEvent.model_validate_json(raw)
