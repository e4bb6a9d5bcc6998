"""The HTTP edge under test: a config with [serve] on, the app on a real uvicorn server, a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import served

from pipeline.config import Config, load_config
from pipeline.http.app import create_app

INGEST_TOKEN = "ingest-token-for-tests-0123456789"
SERVE_SECRET = "serve-secret-for-tests-abcdefghij"
SERVE_TOML = """
[serve]
ingest_tokens = ["env:TEST_INGEST_TOKEN"]
secret = "env:TEST_SERVE_SECRET"
public_url = "https://mail.acme.example"
unsubscribe_mailto = "unsubscribe@acme.example"
tracking_domain = "click.acme.example"
max_batch = 5
max_body_bytes = 20000

[tracking]
campaigns = ["spring"]
open_pixel = true
"""


@pytest.fixture
def serve_config(write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Config]:
    monkeypatch.setenv("TEST_INGEST_TOKEN", INGEST_TOKEN)
    monkeypatch.setenv("TEST_SERVE_SECRET", SERVE_SECRET)

    def make(extra: str = "") -> Config:
        return load_config(write_config(extra=SERVE_TOML + extra))

    return make


@pytest.fixture
def start_app() -> Iterator[Callable[..., tuple[str, Any]]]:
    """``start_app(config, **create_app_kwargs)`` → (base URL, app), served until the test ends."""
    with ExitStack() as stack:

        def start(config: Config, **kwargs: Any) -> tuple[str, Any]:
            app = create_app(config, **kwargs)
            return stack.enter_context(served(app)), app

        yield start


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {INGEST_TOKEN}"}
