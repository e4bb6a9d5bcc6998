"""The audit trail: who (key id or admin fingerprint), what, when, before and after.

Secrets never enter it: snapshots carry ``password_set`` only, and a changed secret is recorded
as the word "changed".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.control.schemas import AuditList, AuditOut
from pipeline.control.scope import TenantScope
from pipeline.db.tables import AuditEntry

CHANGED = "changed"
MAX_PAGE = 500


def record(
    session: Session,
    scope: TenantScope,
    action: str,
    target: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(tenant_id=scope.tenant_id, actor=scope.actor, action=action, target=target, before=before, after=after)
    )


def listing(session: Session, scope: TenantScope, *, before_id: int | None = None, limit: int = 100) -> AuditList:
    """Newest first; ``before_id`` is the cursor (an index range scan inside the tenant)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(AuditEntry).where(AuditEntry.tenant_id == scope.tenant_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).scalars().all()
    entries = [
        AuditOut(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target, before=r.before, after=r.after)
        for r in rows[:limit]
    ]
    return AuditList(entries=entries, next_cursor=entries[-1].id if len(rows) > limit else None)
