"""render as a plain function: sandboxed, strict, escaped, Message-ID stable."""

from __future__ import annotations

import pytest

from pipeline.context import StageContext
from pipeline.errors import RenderError
from pipeline.models import LeadEvent
from pipeline.stages.render import render


def event(**fields: object) -> LeadEvent:
    base: dict[str, object] = {"event_id": "r1", "to": "lead@receiver.example"}
    return LeadEvent.model_validate(base | fields)


def test_template_renders_subject_html_and_a_text_part_derived_from_the_html(ctx: StageContext) -> None:
    message = render(event(template="hello", data={"first_name": "Ada", "company": "Analytical"}), ctx)
    assert message.subject == "Hello Ada"
    assert message.html == "<p>Hi Ada, welcome to Analytical.</p>"
    assert message.text.strip() == "Hi Ada, welcome to Analytical."


def test_lead_data_is_html_escaped_in_the_html_part_only(ctx: StageContext) -> None:
    message = render(
        event(subject="Hi {{ name }}", html="<b>{{ name }}</b>", text="{{ name }}", data={"name": "<script>x</script>"}), ctx
    )
    assert message.html == "<b>&lt;script&gt;x&lt;/script&gt;</b>"
    assert message.text == "<script>x</script>"
    assert message.subject == "Hi <script>x</script>"


def test_a_missing_variable_is_a_render_error_naming_it(ctx: StageContext) -> None:
    with pytest.raises(RenderError, match="company"):
        render(event(template="hello", data={"first_name": "Ada"}), ctx)


def test_an_unknown_template_is_a_render_error(ctx: StageContext) -> None:
    with pytest.raises(RenderError, match="unknown template 'nope'"):
        render(event(template="nope"), ctx)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ lead.update({'x': 1}) }}",
    ],
)
def test_sandbox_escapes_fail_as_render_errors(ctx: StageContext, source: str) -> None:
    with pytest.raises(RenderError):
        render(event(subject="s", text=source, data={"x": 1}), ctx)


def test_a_subject_rendered_with_a_line_break_is_refused(ctx: StageContext) -> None:
    with pytest.raises(RenderError, match="line break"):
        render(event(subject="Hi {{ x }}", text="t", data={"x": "a\r\nBcc: victim@example.com"}), ctx)


def test_message_id_is_stable_for_an_event_and_distinct_between_events(ctx: StageContext) -> None:
    first = render(event(template="hello", data={"first_name": "A", "company": "B"}), ctx).message_id
    again = render(event(template="hello", data={"first_name": "A", "company": "B"}), ctx).message_id
    other = render(event(event_id="r2", template="hello", data={"first_name": "A", "company": "B"}), ctx).message_id
    assert first == again != other
    assert first.startswith("<") and first.endswith("@sender.example>")
