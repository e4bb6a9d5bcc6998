"""Config files are operator input: any text loads or fails with a ConfigError naming file and line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.errors import ConfigError

VALID = """
[broker]
url = "redis://127.0.0.1:6390/0"

[[accounts]]
name = "main"
host = "smtp.example.com"
password = "literal-secret-value-123"
from_email = "hello@example.com"
limits = { per_second = 5, per_day = 1000 }

[[routes]]
match = { list = "dk" }
accounts = ["main"]

[sweeper]
stalled_after = 600

[default]
account = "main"
"""
PATH = Path("/etc/mailpipe/mailpipe.toml")
LINES = VALID.strip().splitlines()
FRAGMENTS = st.sampled_from(
    [
        'name = "x y"',
        "port = 99999",
        'security = "ssl"',
        "[[accounts]]",
        "[nope]",
        'from_email = "not-an-address"',
        'accounts = ["ghost"]',
        "per_second = -1",
        'url = "amqp://h/"',
        "timeout = 0",
        "stalled_after = 0",
        "= broken",
        'from_name = "a\\r\\nBcc: x@y"',
        "[default]",
        'strategy = "random"',
        "\x00",
        '"""',
        "[[routes]]",
        "interval = 1e999",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(LINES)), FRAGMENTS), max_size=4))
def test_a_mutated_config_loads_or_fails_naming_the_file_and_line_without_the_secret(edits: list[tuple[int, str]]) -> None:
    lines = list(LINES)
    for index, fragment in edits:
        lines.insert(index, fragment)
    try:
        config = parse_config("\n".join(lines), PATH)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(str(PATH)) for p in exc.problems), exc.problems
        assert "literal-secret-value-123" not in str(exc)
        return
    assert "literal-secret-value-123" not in repr(config) and "literal-secret-value-123" not in str(config)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_a_config_error_never_a_crash(text: str) -> None:
    try:
        parse_config(text, PATH)
    except ConfigError as exc:
        assert exc.problems


def test_the_sweeper_settings_are_validated() -> None:
    text = VALID.replace("stalled_after = 600", "stalled_after = 0")
    try:
        parse_config(text, PATH)
    except ConfigError as exc:
        assert any("sweeper.stalled_after" in p for p in exc.problems), exc.problems
    else:
        raise AssertionError("stalled_after = 0 accepted")
