"""Deployment configuration: the TOML schema, loading it, checking it, and resolving accounts.

`schema` is the file's shape, `load` reads and locates problems, `validate` checks references across
sections, `resolve` applies provider presets to an account. The names below are the public surface.
"""

from pipeline.config.load import CONFIG_ENV, load_config, parse_config
from pipeline.config.resolve import ResolvedAccount, resolve_account
from pipeline.config.schema import (
    AccountConfig,
    AmbiguousSendPolicy,
    BrokerConfig,
    Config,
    RateLimitConfig,
    RouteConfig,
    Strategy,
)

__all__ = [
    "CONFIG_ENV",
    "AccountConfig",
    "AmbiguousSendPolicy",
    "BrokerConfig",
    "Config",
    "RateLimitConfig",
    "ResolvedAccount",
    "RouteConfig",
    "Strategy",
    "load_config",
    "parse_config",
    "resolve_account",
]
