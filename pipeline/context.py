"""Everything a stage function needs, built once per worker process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import pluggy
import redis

from pipeline.config import Config, ResolvedAccount, resolve_account
from pipeline.limits.account_state import AccountState
from pipeline.limits.ratelimit import RateLimiter
from pipeline.plugin_host.manager import get_plugin_manager, plugin_manager_for, preset_for
from pipeline.state.status import StatusStore
from pipeline.state.suppression import SuppressionStore
from pipeline.templates import TemplateStore


@dataclass
class StageContext:
    config: Config
    redis: redis.Redis
    pm: pluggy.PluginManager = field(default_factory=get_plugin_manager)
    clock: Callable[[], float] = time.time

    @cached_property
    def status(self) -> StatusStore:
        return StatusStore(self.redis)

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
    def resolved(self) -> dict[str, ResolvedAccount]:
        return {a.name: resolve_account(a, preset_for(a, self.pm)) for a in self.config.accounts}

    def account(self, name: str) -> ResolvedAccount:
        return self.resolved[name]


def build_context(config: Config, pm: pluggy.PluginManager | None = None) -> StageContext:
    client = redis.Redis.from_url(config.redis_url, health_check_interval=30, socket_keepalive=True)
    return StageContext(config=config, redis=client, pm=pm or plugin_manager_for(config))
