"""Suppression lists per tenant: the database keeps them, Redis holds the hot index the route stage reads.

Every change goes to the database first, then to the index; ``rebuild`` reloads the index from the
database (after a Redis loss). An unsubscribe is tenant-wide unless a list is named: it covers all of
the tenant's accounts and routes. Removal needs a reason and is audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from pipeline.control.errors import ControlError, NotFound
from pipeline.db.delivery_tables import SUPPRESSION_REASONS, TENANT_WIDE
from pipeline.state.suppression import SuppressionStore

ADDRESS = re.compile(r"^[^@\s,;<>]{1,200}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{1,63}$")
CSV_COLUMNS = ("address", "scope", "reason", "detail", "source", "created_at")


class BadSuppression(ControlError):
    status = 422


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: …"


def _checked(address: str, reason: str, scope: str) -> tuple[str, str, str]:
    normal = address.strip().lower()
    if not ADDRESS.match(normal):
        raise BadSuppression(f"address: {address[:80]!r} is not an email address", field="address")
    if reason not in SUPPRESSION_REASONS:
        raise BadSuppression(f"reason: one of {', '.join(SUPPRESSION_REASONS)}", field="reason")
    if len(scope) > 200:
        raise BadSuppression("scope: a list name of at most 200 characters", field="scope")
    return normal, reason, scope.strip()


def add(
    engine: Engine,
    hot: SuppressionStore,
    tenant: str,
    address: str,
    reason: str,
    *,
    scope: str = TENANT_WIDE,
    source: str = "manual",
    actor: str = "cli",
    tenant_id: int | None = None,
) -> bool:
    """True when new; the hot index learns it at once."""
    normal, reason, scope = _checked(address, reason, scope)
    with engine.begin() as connection:
        inserted = connection.execute(
            text(
                "INSERT INTO suppressions (tenant, address, scope, reason, source) VALUES (:t, :a, :s, :r, :src) "
                "ON CONFLICT (tenant, address, scope) DO NOTHING RETURNING id"
            ),
            {"t": tenant, "a": normal, "s": scope, "r": reason, "src": source[:100]},
        ).first()
        if inserted and tenant_id is not None:
            _audit(connection, tenant_id, actor, "suppression.add", normal, after={"scope": scope, "reason": reason})
    hot.load(tenant, [(normal, scope, reason, source, dt.datetime.now(dt.UTC).timestamp())])
    return inserted is not None


def remove(
    engine: Engine,
    hot: SuppressionStore,
    tenant: str,
    address: str,
    *,
    why: str,
    scope: str = TENANT_WIDE,
    actor: str = "cli",
    tenant_id: int | None = None,
) -> None:
    if not why.strip():
        raise BadSuppression("reason: say why the address may receive mail again", field="reason")
    normal = address.strip().lower()
    with engine.begin() as connection:
        row = connection.execute(
            text("DELETE FROM suppressions WHERE tenant = :t AND address = :a AND scope = :s RETURNING reason, source"),
            {"t": tenant, "a": normal, "s": scope},
        ).first()
        if row is None:
            raise NotFound(f"{normal} is not suppressed" + (f" on list {scope!r}" if scope else ""))
        if tenant_id is not None:
            _audit(
                connection,
                tenant_id,
                actor,
                "suppression.remove",
                normal,
                before={"scope": scope, "reason": row.reason, "source": row.source},
                after={"why": why[:500]},
            )
    hot.discard(tenant, normal, scope)
    if not scope:
        hot.remove(tenant, normal)  # its soft-bounce count goes too


def _audit(
    connection: Any,
    tenant_id: int,
    actor: str,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        text(
            "INSERT INTO audit_log (tenant_id, actor, action, target, before, after) "
            "VALUES (:tid, :actor, :action, :target, CAST(:before AS jsonb), CAST(:after AS jsonb))"
        ),
        {
            "tid": tenant_id,
            "actor": actor,
            "action": action,
            "target": target,
            "before": None if before is None else json.dumps(before),
            "after": None if after is None else json.dumps(after),
        },
    )


def search(engine: Engine, tenant: str, *, query: str | None = None, limit: int = 100, after_id: int = 0) -> list[dict[str, Any]]:
    """Oldest first (keyset on id); ``query`` matches a part of the address."""
    sql = "SELECT id, address, scope, reason, detail, source, created_at FROM suppressions WHERE tenant = :t AND id > :after"
    params: dict[str, Any] = {"t": tenant, "after": after_id, "limit": max(1, min(limit, 1000))}
    if query:
        sql += " AND address LIKE :q"
        params["q"] = f"%{query.strip().lower()}%"
    with engine.connect() as connection:
        rows = connection.execute(text(sql + " ORDER BY id LIMIT :limit"), params).mappings().all()
    return [dict(r) for r in rows]


def lookup(engine: Engine, tenant: str, address: str) -> list[dict[str, Any]]:
    """Every suppression of one address (tenant-wide and per list): since when, because of what."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, address, scope, reason, detail, source, created_at FROM suppressions "
                "WHERE tenant = :t AND address = :a ORDER BY id"
            ),
            {"t": tenant, "a": address.strip().lower()},
        ).mappings()
        return [dict(r) for r in rows]


def import_csv(
    engine: Engine, hot: SuppressionStore, tenant: str, lines: Iterable[str], *, source: str = "import", reason: str = "import"
) -> ImportReport:
    """``address[,scope[,reason]]`` rows (a header row is skipped). Bad rows are reported with their line and
    skipped; good rows are kept. One COPY into a temporary table, one INSERT … ON CONFLICT."""
    report = ImportReport()
    good: dict[tuple[str, str], str] = {}
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and row[0].strip().lower() in ("address", "email"):
            continue
        try:
            address, row_reason, scope = _checked(
                row[0], (row[2].strip() if len(row) > 2 and row[2].strip() else reason), row[1] if len(row) > 1 else ""
            )
        except BadSuppression as exc:
            report.errors.append(f"line {number}: {exc.detail}")
            continue
        good.setdefault((address, scope), row_reason)
    with engine.begin() as connection:
        raw: Any = connection.connection.driver_connection
        cur = raw.cursor()
        cur.execute("CREATE TEMP TABLE suppression_import (address text, scope text, reason text) ON COMMIT DROP")
        with cur.copy("COPY suppression_import (address, scope, reason) FROM STDIN") as copy:
            for (address, scope), row_reason in good.items():
                copy.write_row((address, scope, row_reason))
        cur.execute(
            "INSERT INTO suppressions (tenant, address, scope, reason, source) "
            "SELECT %s, address, scope, reason, %s FROM suppression_import ON CONFLICT (tenant, address, scope) DO NOTHING",
            (tenant, source[:100]),
        )
        report.added = cur.rowcount
    report.already = len(good) - report.added
    now = dt.datetime.now(dt.UTC).timestamp()
    hot.load(tenant, [(a, s, r, source, now) for (a, s), r in good.items()])
    return report


def export_csv(engine: Engine, tenant: str) -> Iterator[bytes]:
    with engine.connect() as connection:
        cur = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        query, args = (  # psycopg binds COPY's parameters client-side
            f"COPY (SELECT {', '.join(CSV_COLUMNS)} FROM suppressions WHERE tenant = %s ORDER BY id)"
            " TO STDOUT WITH (FORMAT csv, HEADER)",
            (tenant,),
        )
        with cur.copy(query, args) as copy:
            for chunk in copy:
                yield bytes(chunk)


def rebuild(engine: Engine, hot: SuppressionStore, tenant: str) -> int:
    """Replace the tenant's hot index with the database's lists (after a Redis loss); returns the entries loaded."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT address, scope, COALESCE(detail, reason), source, created_at FROM suppressions WHERE tenant = :t"),
            {"t": tenant},
        ).all()
    return hot.load(tenant, [(a, s, r, src, at.timestamp()) for a, s, r, src, at in rows], replace=True)


def tenants_with_suppressions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(text("SELECT DISTINCT tenant FROM suppressions"))]
