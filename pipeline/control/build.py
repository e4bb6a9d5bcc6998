"""The control context for a deployment's config, or None when it has no database."""

from __future__ import annotations

import redis

from pipeline.config import Config
from pipeline.control.context import ControlContext
from pipeline.control.crypto import Keyring
from pipeline.control.hostguard import HostPolicy
from pipeline.control.verify_service import Verifier, VerifyLimiter
from pipeline.db.engine import make_engine
from pipeline.errors import ConfigError
from pipeline.plugin_host.manager import plugin_manager_for


def control_context(config: Config, *, client: redis.Redis | None = None) -> ControlContext | None:
    url = config.database.resolved_url()
    if url is None:
        return None
    serve = config.serve
    problems = [f"serve.admin_tokens: {e}" for ref in serve.admin_tokens if (e := ref.check())]
    if problems:
        raise ConfigError(problems)
    engine = make_engine(url, pool_size=config.database.pool_size, statement_timeout_ms=config.database.statement_timeout_ms)
    verifier = Verifier(
        hosts=HostPolicy.from_lists(serve.allow_hosts, serve.allow_ports),
        pm=plugin_manager_for(config),
        limiter=VerifyLimiter(serve.verify_per_minute, client),
        ca_file=serve.trusted_ca_file,
    )
    return ControlContext(
        engine=engine,
        keyring=Keyring.from_refs(config.secrets.master_keys),
        verifier=verifier,
        admin_tokens=[ref.resolve() for ref in serve.admin_tokens],
    )
