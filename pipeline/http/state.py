"""Everything the endpoints share, built once when the app starts; secrets resolved here, never logged."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pluggy
import redis
from pydantic import SecretStr

from pipeline.archive.stores import reader_for, retention_of
from pipeline.config import Config
from pipeline.config.serve import secret_refs
from pipeline.errors import ConfigError
from pipeline.feedback.apply import FeedbackApplier
from pipeline.feedback.tokens import TokenSigner, signer_for
from pipeline.http.certificates import CertificateCache
from pipeline.http.replay import ReplayCache
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter


def resolve_webhook_options(config: Config) -> dict[str, dict[str, Any]]:
    """Each ``[webhooks.<provider>]`` table with its ``env:``/``file:`` values resolved to SecretStr."""
    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for provider, table in config.webhooks.providers.items():
        options = dict(table)
        for key, ref in secret_refs(table).items():
            error = ref.check()
            if error:
                problems.append(f"webhooks.{provider}.{key}: {error}")
            else:
                options[key] = ref.resolve()
        out[provider] = options
    if problems:
        raise ConfigError(problems)
    return out


@dataclass
class ServeState:
    config: Config
    client: redis.Redis
    pm: pluggy.PluginManager
    clock: Callable[[], float] = time.time
    certificates: Callable[[str], bytes] = field(default_factory=CertificateCache)
    submitter_factory: Callable[[], Submitter] | None = None

    def __post_init__(self) -> None:
        serve = self.config.serve
        problems = [f"serve.ingest_tokens: {e}" for ref in serve.ingest_tokens if (e := ref.check())]
        if problems:
            raise ConfigError(problems)
        self.ingest_tokens: list[SecretStr] = [ref.resolve() for ref in serve.ingest_tokens]
        self.webhook_options = resolve_webhook_options(self.config)
        self.replay = ReplayCache(self.client, self.config.webhooks.replay_window)
        # Redis first, then the delivery log for events past [retention] hot (GET /v1/events/{id})
        self.status = StatusStore(self.client, retention=retention_of(self.config), cold=reader_for(self.config))
        self.feedback = FeedbackApplier(self.config, self.client, self.pm)

    def __repr__(self) -> str:
        return f"ServeState(tokens={len(self.ingest_tokens)}, webhooks={sorted(self.webhook_options)})"

    @cached_property
    def submitter(self) -> Submitter:
        if self.submitter_factory is not None:
            return self.submitter_factory()
        return Submitter(self.config, client=self.client)

    @cached_property
    def signer(self) -> TokenSigner | None:
        return signer_for(self.config.serve.secret) if self.config.serve.secret else None

    def token_allowed(self, presented: str) -> bool:
        """Constant time per configured token, and every token is compared."""
        given = presented.encode()
        found = False
        for token in self.ingest_tokens:
            found |= hmac.compare_digest(given, token.get_secret_value().encode())
        return found
