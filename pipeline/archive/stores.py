"""The hot store's retention and its cold fallback, built from a deployment's config."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.state.status import Retention

if TYPE_CHECKING:
    from pipeline.archive.coldstore import DeliveryLogReader


def retention_of(config: Config) -> Retention:
    settings = config.retention
    return Retention(hot=settings.hot, dedupe_window=settings.dedupe_window, stream_max_age=settings.stream_max_age)


@lru_cache(maxsize=8)
def _reader(url: str) -> DeliveryLogReader:
    from pipeline.archive.coldstore import DeliveryLogReader  # SQLAlchemy: only a deployment with a database
    from pipeline.db.engine import make_engine

    return DeliveryLogReader(make_engine(url, pool_size=2))


def reader_for(config: Config) -> DeliveryLogReader | None:
    """The delivery log reader when the deployment has a database (one engine per URL per process)."""
    url = config.database.resolved_url()
    return _reader(url) if url else None
