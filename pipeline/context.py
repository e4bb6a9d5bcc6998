"""Everything a stage function needs, built once per worker process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import pluggy
import redis

from pipeline.archive.stores import reader_for, retention_of
from pipeline.config import Config, ResolvedAccount, resolve_account
from pipeline.limits.account_state import AccountState
from pipeline.limits.ratelimit import RateLimiter
from pipeline.plugin_host.manager import get_plugin_manager, plugin_manager_for, preset_for
from pipeline.registry.build import build_registry
from pipeline.registry.cache import Registry
from pipeline.registry.snapshot import SendingAccount
from pipeline.state.status import StatusStore
from pipeline.state.suppression import SuppressionStore
from pipeline.templates import TemplateStore

if TYPE_CHECKING:
    from pipeline.archive.coldstore import DeliveryLogReader


@dataclass
class StageContext:
    config: Config
    redis: redis.Redis
    pm: pluggy.PluginManager = field(default_factory=get_plugin_manager)
    clock: Callable[[], float] = time.time

    @cached_property
    def cold(self) -> DeliveryLogReader | None:
        """The delivery log, for the rare event or Message-ID that Redis has already let go."""
        return reader_for(self.config)

    @cached_property
    def status(self) -> StatusStore:
        return StatusStore(self.redis, retention=retention_of(self.config), cold=self.cold)

    @cached_property
    def suppression(self) -> SuppressionStore:
        return SuppressionStore(self.redis)

    @cached_property
    def accounts_state(self) -> AccountState:
        return AccountState(self.redis)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis, jitter_ms=self.config.rate_limit.jitter_ms)

    @cached_property
    def templates(self) -> TemplateStore:
        return TemplateStore(self.config.templates_dir)

    @cached_property
    def registry(self) -> Registry:
        return build_registry(self.config, self.pm)

    @cached_property
    def resolved(self) -> dict[str, ResolvedAccount]:
        """The TOML-declared accounts (the `default` tenant's when no database is configured)."""
        return {a.name: resolve_account(a, preset_for(a, self.pm)) for a in self.config.accounts}

    def close(self) -> None:
        if "registry" in self.__dict__:
            self.registry.close()
        self.redis.close()

    def sending_account(self, ref: str) -> SendingAccount:
        """The account a stage message names (see pipeline.registry.refs); KeyError if it is gone."""
        found = self.registry.account(ref)
        if found is None:
            raise KeyError(ref)
        return found

    def account(self, ref: str) -> ResolvedAccount:
        return self.sending_account(ref).resolved


def build_context(config: Config, pm: pluggy.PluginManager | None = None) -> StageContext:
    client = redis.Redis.from_url(config.redis_url, health_check_interval=30, socket_keepalive=True)
    return StageContext(config=config, redis=client, pm=pm or plugin_manager_for(config))
