"""`[webhooks.*]` misconfiguration is caught by `config check` and `serve` start-up, and a refused
request's precise reason is logged, never answered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner
from webhook_kit import webhook_app

from pipeline.cli import app as cli
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.http import webhooks as webhook_route

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"


def problems(write_config: Callable[..., Path], toml: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(extra=toml))
    return caught.value.problems


@pytest.mark.parametrize(
    ("toml", "key", "valid"),
    [
        ('[webhooks.sendgrid]\nverification_key = "MFkw"\n', "verification_key", "public_key"),
        ('[webhooks.mailgun]\nsigningkey = "key-1"\n', "signingkey", "signing_key"),
        ('[webhooks.postmark]\npath_tokn = "abc"\n', "path_tokn", "username, password, path_token"),
        (f'[webhooks.ses]\ntopic_arns = ["{TOPIC}"]\nconfirm_subscription = true\n', "confirm_subscription", "topic_arns"),
    ],
)
def test_a_mistyped_key_is_an_error_naming_it_and_the_valid_keys(
    write_config: Callable[..., Path], toml: str, key: str, valid: str
) -> None:
    found = problems(write_config, toml)
    assert any(f"unknown key {key!r}" in p and valid in p and "webhooks." in p for p in found), found


def test_a_provider_without_what_it_verifies_with_is_an_error(write_config: Callable[..., Path]) -> None:
    assert any("needs public_key" in p for p in problems(write_config, "[webhooks.sendgrid]\n"))
    assert any(
        "needs username and password or path_token" in p for p in problems(write_config, '[webhooks.postmark]\nusername = "u"\n')
    )
    found = problems(write_config, '[webhooks.ses]\ntopic_arns = ["ses-events"]\nconfirm_subscriptions = "yes"\n')
    assert any("'ses-events' is not an SNS topic ARN" in p for p in found)
    assert any("webhooks.ses.confirm_subscriptions: must be true or false" in p for p in found)
    assert any(
        "is not a directory" in p
        for p in problems(write_config, f'[webhooks.ses]\ntopic_arns = ["{TOPIC}"]\ncertificates_dir = "nowhere"\n')
    )
    assert any("did you mean 'sendgrid'" in p for p in problems(write_config, '[webhooks.sendgird]\npublic_key = "MFkw"\n'))


def test_a_secret_reference_that_does_not_resolve_is_an_error(write_config: Callable[..., Path]) -> None:
    found = problems(write_config, '[webhooks.mailgun]\nsigning_key = "env:NO_SUCH_MAILGUN_KEY_IN_TESTS"\n')
    assert any("webhooks.mailgun.signing_key" in p and "NO_SUCH_MAILGUN_KEY_IN_TESTS" in p for p in found), found


def test_a_good_table_passes(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(
        write_config(
            extra=f'[webhooks.ses]\ntopic_arns = ["{TOPIC}"]\nconfirm_subscriptions = false\ncertificates_dir = "{tmp_path}"\n'
        )
    )
    assert config.webhooks.providers["ses"]["topic_arns"] == [TOPIC]


def test_config_check_and_serve_refuse_to_start_and_say_which_key(write_config: Callable[..., Path]) -> None:
    path = write_config(extra='[webhooks.mailgun]\nsigningkey = "key-1"\n')
    for command in (["config", "check", str(path)], ["serve", "--config", str(path)]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, (command, result.output)
        assert "webhooks.mailgun.signingkey" in result.output and "signing_key" in result.output


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = warning


def test_the_refusal_reason_is_logged_not_answered(write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    log = RecordingLog()
    monkeypatch.setattr(webhook_route, "log", log)
    with webhook_app(write_config, '[webhooks.postmark]\npath_token = "pm-path-token-abcdef123456"\n') as base:
        wrong_path = httpx.post(f"{base}/webhooks/postmark/not-the-token", json={"RecordType": "Delivery"})
        no_auth = httpx.post(f"{base}/webhooks/postmark", json={"RecordType": "Delivery"})
    for response in (wrong_path, no_auth):
        assert response.status_code == 401
        assert "match" not in response.text and "path token" not in response.text
    reasons = [fields["reason"] for event, fields in log.lines if event == "webhook_rejected"]
    assert reasons == [
        "postmark: basic auth or path token does not match [webhooks.postmark]",
        "postmark: no basic auth and no path token in the request",
    ]
    assert "pm-path-token-abcdef123456" not in repr(log.lines)
