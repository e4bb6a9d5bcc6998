"""``serve`` and ``worker`` refuse to start on a schema behind the code, and say which command fixes it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.db.engine import DatabaseError
from pipeline.db.migrate import current_revision, head_revision

FIX = "run `mailpipe db upgrade`"


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot reach the database ({type(exc).__name__}: {exc.args[0] if exc.args else ''})") from None
    return SchemaState(current=current, head=head_revision())


def require_current_schema(engine: Engine) -> None:
    """Raise DatabaseError naming the fix when the database is empty or behind."""
    state = schema_state(engine)
    if state.up_to_date:
        return
    if state.current is None:
        raise DatabaseError(f"the database has no mailpipe schema yet (code needs revision {state.head}): {FIX}")
    raise DatabaseError(f"the database schema is at revision {state.current}, the code needs {state.head}: {FIX}")
