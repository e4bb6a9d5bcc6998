"""A plain-text part derived from HTML, for templates that have none (and for reading HTML mail).

Two parsers feed the same text builder:
- `html_to_text` uses the stdlib's `HTMLParser`: any input, any depth (inbox mail, bounces);
- `rendered_html_to_text` uses libxml2's HTML parser (lxml), about six times faster: every
  rendered email without a text template comes through here, and the stdlib parser was two
  thirds of the render stage's CPU. It is only for our own rendered templates: libxml2 drops
  content nested deeper than 256 elements, which an operator's template never is and which lead
  data cannot add (it is escaped on the way in). Input lxml refuses (NUL and other characters XML
  forbids) falls back to the stdlib parser.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from lxml import etree
from lxml import html as lxml_html

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr", "blockquote"}
_SKIP = {"script", "style", "head", "title"}
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")
_LINK_SCHEMES = ("http://", "https://", "mailto:")


class _Text:
    """The text being built, fed start/end/data callbacks by either parser."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.skip_depth = 0
        self.href: str | None = None

    def start(self, tag: str, href: str | None) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href = href

    def end(self, tag: str) -> None:
        if tag in _SKIP and self.skip_depth:
            self.skip_depth -= 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "a" and self.href:
            if self.href.startswith(_LINK_SCHEMES):
                self.parts.append(f" ({self.href})")
            self.href = None

    def data(self, text: str | None) -> None:
        if text and not self.skip_depth:
            self.parts.append(_SPACE.sub(" ", text))

    def result(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).splitlines()]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


class _StdlibParser(HTMLParser):
    def __init__(self, text: _Text) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.text.start(tag, dict(attrs).get("href") if tag == "a" else None)

    def handle_endtag(self, tag: str) -> None:
        self.text.end(tag)

    def handle_data(self, data: str) -> None:
        self.text.data(data)


def html_to_text(markup: str) -> str:
    text = _Text()
    parser = _StdlibParser(text)
    parser.feed(markup)
    parser.close()
    return text.result()


def rendered_html_to_text(markup: str) -> str:
    if not markup.strip():
        return html_to_text(markup)
    text = _Text()
    try:
        root = lxml_html.fromstring(markup)
    except (ValueError, etree.ParserError):
        return html_to_text(markup)
    for action, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else None  # None: a comment or PI
        if action == "start":
            if tag is not None:
                text.start(tag, element.get("href") if tag == "a" else None)
                text.data(element.text)
        else:
            if tag is not None:
                text.end(tag)
            text.data(element.tail)
    return text.result()
