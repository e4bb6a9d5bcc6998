"""Retry of failed mail (idempotent), suppression lists in the database and their Redis index."""

from __future__ import annotations

import csv
import io

import redis
from sqlalchemy import Engine

from pipeline.archive.consumer import Archiver
from pipeline.config import Config
from pipeline.control import events, suppressions
from pipeline.models import LeadEvent
from pipeline.state.status import StatusStore, Transition
from pipeline.state.suppression import SuppressionStore
from pipeline.submit import Submitter


def _archive(client: redis.Redis, engine: Engine) -> None:
    archiver = Archiver(client, engine, consumer="t")
    while archiver.run_once(block_ms=50).entries:
        pass


def _failed_campaign(client: redis.Redis, n: int) -> None:
    store = StatusStore(client)
    leads = [LeadEvent(event_id=f"f-{i}", to=f"lead{i}@example.com", campaign="spring", subject="s", text="t") for i in range(n)]
    store.accept(leads)
    store.record(
        [
            Transition("default", e.event_id, "failed" if i % 2 == 0 else "sent", {"reason": "expired"})
            for i, e in enumerate(leads)
        ]
    )


def test_retry_resubmits_only_failed_mail_skips_suppressed_and_is_idempotent(
    redis_client: redis.Redis, pg_engine: Engine, loaded: Config
) -> None:
    _failed_campaign(redis_client, 10)  # f-0, f-2, … f-8 failed
    hot = SuppressionStore(redis_client)
    suppressions.add(pg_engine, hot, "default", "lead4@example.com", "unsubscribe")
    _archive(redis_client, pg_engine)
    filters = events.EventFilter(campaign="spring")

    plan = events.plan_retry(pg_engine, "default", filters)
    assert sorted(e["metadata"]["retry_of"] for e in plan.resubmit) == ["f-0", "f-2", "f-6", "f-8"]
    assert plan.skipped_suppressed == 1
    report = Submitter(loaded, client=redis_client).submit(plan.resubmit, source="retry")
    assert len(report.accepted) == 4

    again = events.plan_retry(pg_engine, "default", filters)  # before the archiver saw the retries: dedupe stops them
    assert len(Submitter(loaded, client=redis_client).submit(again.resubmit, source="retry").accepted) == 0
    _archive(redis_client, pg_engine)
    after = events.plan_retry(pg_engine, "default", filters)  # after: the log knows they were retried
    assert after.resubmit == [] and after.skipped_already_retried == 4
    page = events.listing(pg_engine, "default", events.EventFilter(campaign="spring"), limit=100)
    linked = {e["retry_of"] for e in page.events if e["retry_of"]}
    assert linked == {"f-0", "f-2", "f-6", "f-8"}


def test_listing_pages_by_keyset_and_export_streams_every_row(redis_client: redis.Redis, pg_engine: Engine) -> None:
    _failed_campaign(redis_client, 25)
    _archive(redis_client, pg_engine)
    seen, cursor = [], None
    while True:
        page = events.listing(pg_engine, "default", events.EventFilter(outcome="failed"), limit=5, cursor=cursor)
        seen += [e["event_id"] for e in page.events]
        if not (cursor := page.next_cursor):
            break
    assert len(seen) == len(set(seen)) == 13
    exported = b"".join(events.export_csv(pg_engine, "default", events.EventFilter(campaign="spring")))
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    assert len(rows) == 25 and rows[0]["campaign"] == "spring"
    assert events.listing(pg_engine, "other", events.EventFilter(), limit=10).events == []  # another tenant sees nothing


def test_import_keeps_good_rows_and_reports_bad_ones_with_their_line(redis_client: redis.Redis, pg_engine: Engine) -> None:
    hot = SuppressionStore(redis_client)
    lines = [
        "address,list,reason",
        "a@example.com",
        "not-an-address",
        "b@example.com,newsletter",
        "c@example.com,,complaint",
        "d@example,",
        "a@example.com",
    ]
    report = suppressions.import_csv(pg_engine, hot, "default", lines)
    assert report.added == 3 and report.already == 0
    assert report.errors == [
        "line 3: address: 'not-an-address' is not an email address",
        "line 6: address: 'd@example' is not an email address",
    ]
    found = hot.lookup(
        "default", ["a@example.com", "b@example.com", "b@example.com", "zz@example.com"], [None, "newsletter", "other", None]
    )
    assert [f.reason if f else None for f in found] == ["import", "import", None, None]
    assert suppressions.import_csv(pg_engine, hot, "default", ["a@example.com"]).already == 1


def test_rebuild_after_flushall_restores_every_suppression(redis_client: redis.Redis, pg_engine: Engine) -> None:
    hot = SuppressionStore(redis_client)
    suppressions.import_csv(pg_engine, hot, "default", [f"user{i}@example.com" for i in range(2000)])
    hot.add("default", "bounced@example.com", "user_unknown", source="bounce")  # a worker's own finding
    _archive(redis_client, pg_engine)  # reaches the database through the suppression log
    redis_client.flushall()
    assert hot.count("default") == 0
    assert suppressions.rebuild(pg_engine, hot, "default") == 2001
    assert hot.lookup("default", ["USER7@example.com", "bounced@example.com"])[1] is not None
    assert hot.lookup("default", ["user7@example.com"])[0] is not None


def test_remove_needs_a_reason_and_is_audited(redis_client: redis.Redis, pg_engine: Engine) -> None:
    from sqlalchemy import text

    hot = SuppressionStore(redis_client)
    with pg_engine.begin() as connection:
        tenant_id = connection.execute(text("INSERT INTO tenants (slug) VALUES ('default') RETURNING id")).scalar_one()
    suppressions.add(pg_engine, hot, "default", "x@example.com", "manual", tenant_id=tenant_id, actor="cli:ops")
    try:
        suppressions.remove(pg_engine, hot, "default", "x@example.com", why=" ", tenant_id=tenant_id)
    except suppressions.BadSuppression as exc:
        assert exc.field == "reason"
    else:
        raise AssertionError("a removal without a reason was accepted")
    suppressions.remove(
        pg_engine, hot, "default", "x@example.com", why="asked to rejoin by phone", tenant_id=tenant_id, actor="cli:ops"
    )
    assert hot.lookup("default", ["x@example.com"]) == [None]
    with pg_engine.connect() as connection:
        actions = connection.execute(text("SELECT action, actor FROM audit_log ORDER BY id")).all()
    assert [tuple(a) for a in actions] == [("suppression.add", "cli:ops"), ("suppression.remove", "cli:ops")]
