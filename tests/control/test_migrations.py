"""Migrations: upgrade from empty, downgrade one step and back, and the models match the revisions."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pipeline.db import migrate
from pipeline.db.engine import DatabaseError, make_engine
from pipeline.db.schema_check import require_current_schema
from pipeline.db.tables import Base

CONTROL_TABLES = {"tenants", "tenant_data_keys", "smtp_accounts", "routes", "api_keys", "audit_log"}


def test_upgrade_from_empty_reaches_head_and_creates_every_table(pg_empty_url: str) -> None:
    engine = make_engine(pg_empty_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_table_names()) >= CONTROL_TABLES
    engine.dispose()


def test_downgrade_one_step_and_upgrade_again(pg_empty_url: str) -> None:
    engine = make_engine(pg_empty_url)
    migrate.upgrade(engine)
    head = migrate.head_revision()
    migrate.downgrade(engine, "-1")
    assert migrate.current_revision(engine) != head
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == head
    engine.dispose()


def test_the_models_match_what_the_migrations_create(pg_empty_url: str) -> None:
    engine = make_engine(pg_empty_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], diff
    engine.dispose()


def test_a_schema_behind_head_is_refused_with_the_command_that_fixes_it(pg_empty_url: str) -> None:
    engine = make_engine(pg_empty_url)
    with pytest.raises(DatabaseError, match="run `mailpipe db upgrade`"):
        require_current_schema(engine)
    migrate.upgrade(engine)
    require_current_schema(engine)
    engine.dispose()
