"""The registry as the workers' :class:`~pipeline.oauth.tokens.GrantKeeper`: a tenant's account's rotated
refresh token is sealed into PostgreSQL, a revoked grant marks the account ``auth_failed`` there.

Workers name a tenant's account ``tenant/name`` under the ``default`` runtime tenant; the ``default``
tenant's own accounts keep their bare names. The database calls run on a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio

import structlog

from pipeline.config.resolve import ResolvedOAuth
from pipeline.oauth.revocation import owner_of
from pipeline.registry.sources import DatabaseSource

log = structlog.get_logger("mailpipe.oauth")


class RegistryGrants:
    def __init__(self, source: DatabaseSource) -> None:
        from pipeline.control.context import ControlContext  # the control plane: only a database's grants need it
        from pipeline.control.hostguard import HostPolicy
        from pipeline.control.verify_service import Verifier

        # No verification happens here: the verifier only completes the context the service layer takes.
        verifier = Verifier(hosts=HostPolicy.from_lists((), ()), pm=source.pm)
        self.ctx = ControlContext(engine=source.engine, keyring=source.keyring, verifier=verifier)

    def __repr__(self) -> str:
        return "RegistryGrants()"

    async def rotated(self, tenant: str, account: str, configured: ResolvedOAuth, used: ResolvedOAuth, new: str) -> None:
        from pipeline.control import grants

        owner, name = owner_of(tenant, account)
        tokens = {configured.refresh_token.get_secret_value(), used.refresh_token.get_secret_value()}
        stored = await asyncio.to_thread(grants.store_rotated_refresh_token, self.ctx, owner, name, tokens, new)
        log.info("oauth_refresh_token_rotated", tenant=owner, account=name, stored_in_registry=stored)

    async def revoked(self, tenant: str, account: str, configured: ResolvedOAuth, used: ResolvedOAuth, error: str) -> None:
        from pipeline.control import grants

        owner, name = owner_of(tenant, account)
        tokens = {configured.refresh_token.get_secret_value(), used.refresh_token.get_secret_value()}
        changed = await asyncio.to_thread(grants.mark_reconnect_needed, self.ctx, owner, name, tokens, error)
        log.warning("oauth_reconnect_needed", tenant=owner, account=name, error=error, marked_in_registry=changed)


def grant_keeper(source: object) -> RegistryGrants | None:
    """The keeper for a deployment's snapshot source: the registry's, or None for a TOML-only deployment."""
    return RegistryGrants(source) if isinstance(source, DatabaseSource) else None
