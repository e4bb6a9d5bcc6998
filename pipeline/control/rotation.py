"""``mailpipe secrets rotate``: rewrap every tenant data key under the first master key, online.

Each data key is rewrapped in its own short transaction (row lock only), so the API keeps
working meanwhile; account ciphertexts do not change, as the data keys themselves do not.
"""

from __future__ import annotations

from sqlalchemy import func, select

from pipeline.control.context import ControlContext
from pipeline.db.tables import TenantDataKey

BATCH = 500


def rotate_data_keys(ctx: ControlContext) -> int:
    """How many data keys were rewrapped (0 when all are already under the current master key)."""
    current = ctx.keyring.current.key_id
    done = 0
    last = 0
    while True:
        with ctx.transaction() as session:
            rows = (
                session.execute(
                    select(TenantDataKey)
                    .where(TenantDataKey.master_key_id != current, TenantDataKey.tenant_id > last)
                    .order_by(TenantDataKey.tenant_id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for row in rows:
                raw = ctx.keyring.unwrap_raw(row.tenant_id, row.master_key_id, row.wrapped_key)
                row.master_key_id, row.wrapped_key = ctx.keyring.wrap(row.tenant_id, raw)
                row.rotated_at = func.now()
                last = row.tenant_id
            done += len(rows)
        if len(rows) < BATCH:
            return done
