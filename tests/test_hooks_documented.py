"""Every hook is documented and tested (as datasette's test_plugin_hooks_have_tests): adding a hook to
pipeline/plugin_host/hookspecs.py without a docstring, a guide entry or a test fails here."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.plugin_host import hookspecs

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
HOOKS = sorted(name for name, value in vars(hookspecs).items() if name.startswith("mailpipe_") and callable(value))


def spec(name: str) -> Callable[..., Any]:
    function: Callable[..., Any] = getattr(hookspecs, name)
    return function


def guide_section(name: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^### {name}\(.*?\)\n(.*?)(?=^#{{2,3}} |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/plugins.md has no '### {name}(...)' section"
    return match.group(1)


def test_the_hooks_are_found() -> None:
    assert "mailpipe_provider_presets" in HOOKS and len(HOOKS) >= 7


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_a_spec_with_a_docstring_and_a_param_line_per_argument(name: str) -> None:
    function = spec(name)
    assert getattr(function, f"{hookspecs.PROJECT}_spec", None) is not None, f"{name} is not marked @hookspec"
    doc = inspect.getdoc(function)
    assert doc and len(doc.splitlines()[0]) > 10, f"{name} has no docstring"
    for parameter in inspect.signature(function).parameters:
        assert f":param {parameter}:" in doc, f"{name}: no ':param {parameter}:' line"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_in_the_plugin_guide_with_its_kind_and_arguments(name: str) -> None:
    section = guide_section(name)
    firstresult = getattr(spec(name), f"{hookspecs.PROJECT}_spec").get("firstresult", False)
    assert f"Kind: {'firstresult' if firstresult else 'all'}" in section
    for parameter in inspect.signature(spec(name)).parameters:
        assert f"`{parameter}`" in section, f"docs/plugins.md: {name} does not describe `{parameter}`"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name: str) -> None:
    this = Path(__file__).resolve()
    tests = [p for p in (ROOT / "tests").rglob("*.py") if p.resolve() != this]
    assert any(name in path.read_text(encoding="utf-8") for path in tests), f"no test mentions {name}"
