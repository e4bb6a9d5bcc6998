"""What workers learn about a registry account's OAuth grant, written back as the system: a rotated
refresh token (sealed like every credential) and a revoked grant (the account becomes ``auth_failed``).

Both act only on the grant the worker used: an account reconnected meanwhile (a new consent) is left
alone. Both bump the tenant's version and NOTIFY, so every worker reloads the account. A revocation is
audited as ``system:oauth``; a rotation is not (Microsoft rotates at every refresh, about hourly: the
audit log would fill with it) but it moves the account's ``updated_at``, so a concurrent edit that read
the old grant is refused as a conflict instead of writing the dead token back.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.config.oauth import AuthMethod
from pipeline.control import audit
from pipeline.control.context import ControlContext
from pipeline.control.errors import NotFound
from pipeline.control.scope import Principal, TenantScope, resolve_scope
from pipeline.control.tenants import data_key, lock_and_bump
from pipeline.db.tables import SmtpAccount
from pipeline.oauth.errors import RECONNECT_HINT

XOAUTH2 = AuthMethod.XOAUTH2.value
SYSTEM = Principal(actor="system:oauth", admin=True)
RECONNECT_NEEDED = "reconnect_needed"
# An account's status_reason → what to tell the tenant (AccountOut.status_hint).
STATUS_HINTS = {RECONNECT_NEEDED: RECONNECT_HINT}


def _locked(session: Session, tenant: str, name: str) -> tuple[TenantScope, SmtpAccount] | None:
    try:
        scope = resolve_scope(session, SYSTEM, tenant)
    except NotFound:
        return None
    row = session.execute(
        select(SmtpAccount).where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.name == name).with_for_update()
    ).scalar_one_or_none()
    return (scope, row) if row is not None else None


def _holds(ctx: ControlContext, session: Session, scope: TenantScope, row: SmtpAccount, tokens: set[str]) -> dict[str, str]:
    """The row's opened secrets when its stored grant is one of ``tokens``; else empty (reconnected meanwhile)."""
    if row.auth_method != XOAUTH2 or not row.secret:
        return {}
    secrets = data_key(ctx, session, scope).open_secrets(row.name, row.secret)
    return secrets if secrets.get("oauth_refresh_token") in tokens else {}


def store_rotated_refresh_token(ctx: ControlContext, tenant: str, name: str, used: set[str], new_refresh_token: str) -> bool:
    """Seal ``new_refresh_token`` into the account when its stored refresh token is one of ``used``; True if stored."""
    with ctx.transaction() as session:
        found = _locked(session, tenant, name)
        if found is None:
            return False
        scope, row = found
        secrets = _holds(ctx, session, scope, row, used)
        if not secrets or secrets["oauth_refresh_token"] == new_refresh_token:
            return False
        lock_and_bump(session, scope)
        secrets["oauth_refresh_token"] = new_refresh_token
        row.secret = data_key(ctx, session, scope).seal_secrets(name, secrets)
        row.updated_at = func.now()
        return True


def mark_reconnect_needed(ctx: ControlContext, tenant: str, name: str, used: set[str], error: str) -> bool:
    """The provider refused the account's grant for good: ``auth_failed``, reason ``reconnect_needed``; True if changed."""
    with ctx.transaction() as session:
        found = _locked(session, tenant, name)
        if found is None:
            return False
        scope, row = found
        if row.status == "auth_failed" and row.status_reason == RECONNECT_NEEDED:
            return False
        if not _holds(ctx, session, scope, row, used):
            return False
        lock_and_bump(session, scope)
        before = {"status": row.status, "status_reason": row.status_reason}
        row.status, row.status_reason = "auth_failed", RECONNECT_NEEDED
        row.updated_at = func.now()
        after = {"status": row.status, "status_reason": RECONNECT_NEEDED, "hint": RECONNECT_HINT, "error": error[:64]}
        audit.record(session, scope, "account.auth_failed", name, before=before, after=after)
        return True
