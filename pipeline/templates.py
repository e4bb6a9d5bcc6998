"""Sandboxed Jinja2 templates: lead data is untrusted, so no attribute escapes and no silent blanks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pipeline.errors import RenderError


@dataclass(frozen=True)
class TemplateSource:
    subject: str | None
    html: str | None
    text: str | None


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        auto_reload=False,
    )


HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


class TemplateStore:
    """Templates on disk: NAME.subject, NAME.html and/or NAME.txt in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one store per process, templates are immutable
    def load(self, name: str) -> TemplateSource:
        parts = {}
        for suffix in ("subject", "html", "txt"):
            path = self.directory / f"{name}.{suffix}"
            parts[suffix] = path.read_text(encoding="utf-8") if path.is_file() else None
        if parts["html"] is None and parts["txt"] is None:
            raise RenderError(f"unknown template {name!r} (no {name}.html or {name}.txt in {self.directory})")
        if parts["subject"] is None:
            raise RenderError(f"template {name!r} has no {name}.subject")
        return TemplateSource(subject=parts["subject"].strip(), html=parts["html"], text=parts["txt"])


@functools.lru_cache(maxsize=1024)
def _compile(source: str, autoescape: bool) -> jinja2.Template:
    return (HTML_ENV if autoescape else TEXT_ENV).from_string(source)


def render_string(source: str, context: dict[str, Any], *, html: bool, limit: int, part: str) -> str:
    try:
        output = _compile(source, html).render(context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{part}: missing template variable: {exc.message}") from None
    except SecurityError as exc:
        raise RenderError(f"{part}: template tried an unsafe operation: {exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{part}: template syntax error line {exc.lineno}: {exc.message}") from None
    except Exception as exc:
        raise RenderError(f"{part}: template failed: {type(exc).__name__}: {exc}") from None
    if len(output) > limit:
        raise RenderError(f"{part}: rendered output exceeds {limit} characters")
    return output
