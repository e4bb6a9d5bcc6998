"""A private PostgreSQL cluster per test session and a fresh database per test (never the one on 5432).

Registered in tests/conftest.py as a plugin. Fixtures:
- ``pg_cluster``: the session's LocalPostgres;
- ``pg_empty_url``: a new empty database (for migration tests);
- ``pg_url``: a new database at the head revision, copied from a template migrated once per
  session (CREATE DATABASE … TEMPLATE takes milliseconds, a migration run does not);
- ``pg_engine``: an Engine on ``pg_url``, disposed after the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from pipeline.db import migrate
from pipeline.db.engine import make_engine
from pipeline.db.localpg import LocalPostgres

TEMPLATE = "mailpipe_template"
_numbers = itertools.count(1)


def _admin(cluster: LocalPostgres) -> Engine:
    return make_engine(cluster.url("postgres")).execution_options(isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalPostgres]:
    cluster = LocalPostgres(fast=True).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def _pg_template(pg_cluster: LocalPostgres) -> str:
    admin = _admin(pg_cluster)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {TEMPLATE}"))
    engine = make_engine(pg_cluster.url(TEMPLATE))
    migrate.upgrade(engine)
    engine.dispose()
    admin.dispose()
    return TEMPLATE


def _fresh_database(cluster: LocalPostgres, template: str) -> Iterator[str]:
    name = f"test_{next(_numbers)}"
    admin = _admin(cluster)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    yield cluster.url(name)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def pg_empty_url(pg_cluster: LocalPostgres) -> Iterator[str]:
    yield from _fresh_database(pg_cluster, "template0")


@pytest.fixture
def pg_url(pg_cluster: LocalPostgres, _pg_template: str) -> Iterator[str]:
    yield from _fresh_database(pg_cluster, _pg_template)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()
