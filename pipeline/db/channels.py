"""PostgreSQL NOTIFY channels, in a module of their own so a listener needs no service layer to name one."""

from __future__ import annotations

REGISTRY_CHANNEL = "mailpipe_registry"  # pipeline.control sends a tenant's slug on it; pipeline.registry listens
