"""Engine and session factory from a URL; ``postgresql://`` URLs use the psycopg 3 driver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import MailpipeError


class DatabaseError(MailpipeError):
    """The database is missing, unreachable or behind the code."""


def driver_url(url: str) -> str:
    """``postgresql://…`` and ``postgres://…`` → ``postgresql+psycopg://…`` (psycopg 3, not psycopg2)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    if not url.startswith("postgresql+"):
        raise DatabaseError("database url must start with postgresql:// (PostgreSQL is the only supported database)")
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(driver_url(url)).render_as_string(hide_password=True)


def make_engine(url: str, *, pool_size: int = 5, statement_timeout_ms: int = 15_000) -> Engine:
    return create_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"options": f"-c statement_timeout={statement_timeout_ms}", "connect_timeout": 10},
    )


SessionFactory = sessionmaker[Session]


def session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """One explicit transaction: committed when the block ends, rolled back when it raises."""
    with factory() as session, session.begin():
        yield session
