"""Templates are lead-data-driven and untrusted: sandbox escapes fail, every failure is a RenderError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import RenderError
from pipeline.templates import render_string

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lead.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'].system('id') }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ ''.format.__self__ }}",
    "{{ lead.update({'x': 1}) }}",
    "{{ range(10**9)|list }}",
    "{{ 'x' * 10**8 }}",
    "{% set x = namespace() %}{{ x.__dict__ }}",
    "{{ (1).__class__.__base__.__subclasses__() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escape_attempts_fail_as_render_errors(source: str) -> None:
    with pytest.raises(RenderError) as raised:
        render_string(source, {"lead": {"a": 1}, "first_name": "x"}, html=False, limit=100_000, part="text")
    assert raised.value.args[0].startswith("text: ")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}%#()[]._'\"|~+-*/ abcxlead0123\n")), max_size=60), st.booleans())
def test_any_template_text_renders_or_fails_with_a_render_error(source: str, html: bool) -> None:
    try:
        part = "html" if html else "text"
        output = render_string(source, {"lead": {"a": "<b>"}, "a": "<b>"}, html=html, limit=5_000, part=part)
    except RenderError as exc:
        assert str(exc).split(":")[0] in ("html", "text")
        return
    assert len(output) <= 5_000


def test_rendered_output_over_the_limit_is_refused() -> None:
    with pytest.raises(RenderError, match="exceeds 1000 characters"):
        render_string("{% for i in range(2000) %}x{% endfor %}", {}, html=False, limit=1_000, part="text")


def test_lead_data_is_escaped_in_html_and_never_evaluated() -> None:
    out = render_string("<p>{{ name }}</p>", {"name": "<script>{{ 7*7 }}</script>"}, html=True, limit=1_000, part="html")
    assert out == "<p>&lt;script&gt;{{ 7*7 }}&lt;/script&gt;</p>"
