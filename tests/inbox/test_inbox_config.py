"""IMAP settings in the config: per account and shared, validated, secrets by reference and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import parse_config
from pipeline.errors import ConfigError
from pipeline.inbox.poller import mailboxes_of

BASE = """
[[accounts]]
name = "alpha"
host = "smtp.example"
from_email = "alpha@sender.example"
{imap}

[default]
account = "alpha"
{inbox}
"""


def load(imap: str = "", inbox: str = "") -> object:
    return parse_config(BASE.format(imap=imap, inbox=inbox), Path("/etc/mailpipe.toml"))


def test_per_account_and_shared_mailboxes_are_read_with_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAP_PW", "s3cret-imap-pw")
    config = load(
        imap='imap = { host = "imap.example", username = "alpha@sender.example", password = "env:IMAP_PW" }',
        inbox='[inbox]\nhost = "imap.bounces.example"\nsecurity = "starttls"\nusername = "b"\npassword = "env:IMAP_PW"\n'
        'folders = ["INBOX", "Junk"]\nmove_processed_to = "Done"',
    )
    alpha, shared = mailboxes_of(config)  # type: ignore[arg-type]

    assert (alpha.name, alpha.settings.resolved_port, alpha.settings.folders, alpha.settings.read_only) == (
        "account:alpha",
        993,
        ["INBOX"],
        True,
    )
    assert (shared.name, shared.settings.resolved_port, shared.settings.read_only) == ("shared:shared", 143, False)
    assert "s3cret" not in repr(alpha.settings) and "s3cret" not in str(config)


@pytest.mark.parametrize(
    ("imap", "problem"),
    [
        ('imap = { host = "i", username = "u", password = "env:IMAP_PW", security = "ssl" }', "accounts[0].imap.security"),
        (
            'imap = { host = "i", username = "u", password = "env:IMAP_PW", move_processed_to = "X", delete_processed = true }',
            "not both",
        ),
        ('imap = { host = "i", username = "u", password = "env:IMAP_PW", folders = [] }', "accounts[0].imap.folders"),
        ('imap = { host = "i", username = "u", password = "env:IMAP_PW", folders = ["Entwürfe"] }', "ASCII"),
        ('imap = { host = "i", username = "u", password = "env:IMAP_PW", hots = "typo" }', "accounts[0].imap.hots"),
        ('imap = { host = "i", username = "u", password = "env:IMAP_MISSING" }', "env:IMAP_MISSING is not set"),
        ('imap = { host = "i", username = "u" }', 'accounts[0].imap.password: required (unless auth_method = "xoauth2")'),
    ],
)
def test_bad_imap_settings_are_named_with_file_and_line(monkeypatch: pytest.MonkeyPatch, imap: str, problem: str) -> None:
    monkeypatch.setenv("IMAP_PW", "pw")
    with pytest.raises(ConfigError) as failure:
        load(imap=imap)
    text = "; ".join(failure.value.problems)
    assert "/etc/mailpipe.toml:6:" in text and problem in text, text
