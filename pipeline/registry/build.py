"""The registry a deployment's workers use: PostgreSQL when a database is configured, else the TOML."""

from __future__ import annotations

import pluggy

from pipeline.config import Config
from pipeline.registry.cache import Registry
from pipeline.registry.sources import DatabaseSource, FileSource, SnapshotSource


def snapshot_source(config: Config, pm: pluggy.PluginManager) -> SnapshotSource:
    url = config.database.resolved_url()
    if url is None:
        return FileSource(config, pm)
    from pipeline.control.crypto import Keyring  # only a deployment with a database loads these
    from pipeline.db.engine import make_engine

    engine = make_engine(url, pool_size=config.database.pool_size, statement_timeout_ms=config.database.statement_timeout_ms)
    keyring = Keyring.from_refs(config.secrets.master_keys)
    return DatabaseSource(engine, keyring, pm, trusted_ca_file=config.serve.trusted_ca_file)


def build_registry(config: Config, pm: pluggy.PluginManager) -> Registry:
    tenants = config.tenants
    return Registry(snapshot_source(config, pm), max_tenants=tenants.max_cached, recheck=tenants.recheck_seconds)
