"""The delivery log and suppression lists over HTTP: tenant from the key, keyset pages, CSV, retry, import."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from control_kit import INGEST_TOKEN, Api
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from pipeline.archive.consumer import Archiver
from pipeline.config import load_config
from pipeline.control.context import ControlContext
from pipeline.http.app import create_app
from pipeline.models import LeadEvent
from pipeline.state import keys
from pipeline.state.status import Retention, StatusStore, Transition
from pipeline.state.suppression import SuppressionStore


@pytest.fixture
def log_api(
    control: ControlContext,
    write_config: Callable[..., Path],
    redis_client: redis.Redis,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Api]:
    """The whole app with a database in its config (so GET /v1/events/{id} can read the delivery log)."""
    monkeypatch.setenv("TEST_INGEST_TOKEN", INGEST_TOKEN)
    extra = f'[serve]\ningest_tokens = ["env:TEST_INGEST_TOKEN"]\n\n[database]\nurl = "{pg_url}"\n'
    app = create_app(load_config(write_config(extra=extra)), client=redis_client, with_control=False)
    app.state.control = control
    with TestClient(app) as client:
        api = Api(client)
        api.tenant("alpha")
        api.tenant("bravo")
        yield api


def _log(client: redis.Redis, engine: Engine, tenant: str, outcomes: list[str], campaign: str = "spring") -> list[str]:
    """Events through the real status scripts and the real archiver into the delivery log."""
    store = StatusStore(client, retention=Retention(hot=1, dedupe_window=600))
    ids = [f"{tenant}-{campaign}-{i}" for i in range(len(outcomes))]
    leads = [
        LeadEvent(event_id=e, tenant=tenant, to=f"{e}@example.com", campaign=campaign, subject="Hi", text="Hello") for e in ids
    ]
    assert all(store.accept(leads))
    store.record(
        [Transition(tenant, e, o, {"reason": "expired" if o == "failed" else ""}) for e, o in zip(ids, outcomes, strict=True)]
    )
    archiver = Archiver(client, engine, consumer="test")
    while archiver.run_once(block_ms=50).entries:
        pass
    return ids


def test_list_pages_by_keyset_filters_and_shows_a_key_only_its_own_tenant(
    log_api: Api, redis_client: redis.Redis, pg_engine: Engine
) -> None:
    alpha, bravo = log_api.key("alpha"), log_api.key("bravo")
    ids = _log(redis_client, pg_engine, "alpha", ["failed", "sent"] * 5)
    _log(redis_client, pg_engine, "bravo", ["failed"] * 3)

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"campaign": "spring", "outcome": "failed", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = log_api.call("GET", "/v1/events", token=alpha, params=params).json()
        seen += [e["event_id"] for e in page["events"]]
        assert all(e["outcome"] == "failed" and e["reason"] == "expired" for e in page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[0::2]  # every failed one, oldest first, each once
    assert cursor is None

    bravo_sees = log_api.call("GET", "/v1/events", token=bravo, params={"limit": 100}).json()["events"]
    assert {e["event_id"] for e in bravo_sees} == {"bravo-spring-0", "bravo-spring-1", "bravo-spring-2"}
    assert log_api.call("GET", "/v1/events", token=bravo, params={"tenant": "alpha"}).status_code == 404
    by_admin = log_api.call("GET", "/v1/events", params={"tenant": "alpha", "to": f"{ids[3]}@example.com"}).json()
    assert [e["event_id"] for e in by_admin["events"]] == [ids[3]]


def test_bad_filters_are_problems_naming_the_field(log_api: Api) -> None:
    key = log_api.key("alpha")
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}, "until"),
    ):
        response = log_api.call("GET", "/v1/events", token=key, params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field, response.json()
    reader_only = log_api.key("alpha", scopes=("events:write",))
    assert log_api.call("GET", "/v1/events", token=reader_only).status_code == 403


def test_csv_export_streams_the_filtered_log(log_api: Api, redis_client: redis.Redis, pg_engine: Engine) -> None:
    key = log_api.key("alpha")
    ids = _log(redis_client, pg_engine, "alpha", ["failed", "sent", "failed"])
    _log(redis_client, pg_engine, "alpha", ["failed"], campaign="autumn")
    response = log_api.call(
        "GET", "/v1/events", token=key, params={"campaign": "spring", "outcome": "failed"}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["event_id"] for r in rows] == [ids[0], ids[2]]
    assert rows[0]["recipient"] == f"{ids[0]}@example.com" and rows[0]["campaign"] == "spring"


def test_retry_over_http_dry_run_then_once_only(log_api: Api, redis_client: redis.Redis, pg_engine: Engine) -> None:
    key = log_api.key("alpha")
    ids = _log(redis_client, pg_engine, "alpha", ["failed", "failed", "sent", "failed"])
    assert (
        log_api.call("POST", "/v1/tenants/alpha/suppressions", token=key, json={"address": f"{ids[1]}@example.com"}).status_code
        == 201
    )

    dry = log_api.call("POST", "/v1/events/retry", token=key, json={"campaign": "spring", "dry_run": True}).json()
    assert dry["dry_run"] and dry["resubmitted"] == 2 and dry["skipped_suppressed"] == 1
    assert sorted(e["retry_of"] for e in dry["events"]) == [ids[0], ids[3]]
    assert not redis_client.exists(keys.event("alpha", dry["events"][0]["event_id"]))  # a dry run sends nothing

    first = log_api.call("POST", "/v1/events/retry", token=key, json={"campaign": "spring"}).json()
    assert first["resubmitted"] == 2 and first["duplicates"] == 0
    retried = StatusStore(redis_client).get("alpha", dry["events"][0]["event_id"])
    assert retried is not None and retried.event is not None and retried.event["metadata"]["retry_of"] in (ids[0], ids[3])
    second = log_api.call("POST", "/v1/events/retry", token=key, json={"campaign": "spring"}).json()
    assert second["resubmitted"] == 0 and second["duplicates"] == 2  # running it twice sends nothing twice

    bad = log_api.call("POST", "/v1/events/retry", token=key, json={"outcome": "sent"})
    assert bad.status_code == 422 and bad.json()["field"] == "outcome"
    unknown = log_api.call("POST", "/v1/events/retry", token=key, json={"campaing": "x"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "campaing"
    assert log_api.call("POST", "/v1/events/retry", token=log_api.key("alpha", scopes=("events:read",))).status_code == 403


def test_get_event_reads_redis_first_then_the_delivery_log(log_api: Api, redis_client: redis.Redis, pg_engine: Engine) -> None:
    key = log_api.key("alpha")
    (event_id,) = _log(redis_client, pg_engine, "alpha", ["failed"])
    hot = log_api.call("GET", f"/v1/events/{event_id}", token=key).json()
    time.sleep(1.5)  # past [retention] hot = 1 s: Redis let it go
    assert not redis_client.exists(keys.event("alpha", event_id))
    cold = log_api.call("GET", f"/v1/events/{event_id}", token=key)
    assert cold.status_code == 200, cold.text
    answer = cold.json()
    for stamp in ("created", "updated"):  # PostgreSQL keeps microseconds
        assert abs(answer.pop(stamp) - hot.pop(stamp)) < 1e-5
    assert answer == hot  # the same answer, from PostgreSQL
    assert log_api.call("GET", f"/v1/events/{event_id}", token=log_api.key("bravo")).status_code == 404


def test_suppressions_add_look_up_search_remove_with_an_audited_reason(
    log_api: Api, redis_client: redis.Redis, pg_engine: Engine
) -> None:
    key = log_api.key("alpha")
    base = "/v1/tenants/alpha/suppressions"
    assert log_api.call("POST", base, token=key, json={"address": "Ada@Example.com", "reason": "unsubscribe"}).status_code == 201
    again = log_api.call("POST", base, token=key, json={"address": "ada@example.com", "reason": "unsubscribe"})
    assert again.status_code == 200 and again.json()["added"] is False
    assert log_api.call("POST", base, token=key, json={"address": "bob@example.com", "scope": "nordics"}).status_code == 201
    bad = log_api.call("POST", base, token=key, json={"address": "not-an-address"})
    assert bad.status_code == 422 and bad.json()["field"] == "address"
    assert SuppressionStore(redis_client).lookup("alpha", ["ada@example.com"])[0] is not None  # the hot index knows

    status = log_api.call("GET", f"{base}/ada@example.com", token=key).json()
    assert status["suppressed"] and status["entries"][0]["reason"] == "unsubscribe" and status["entries"][0]["source"] == "api"
    assert log_api.call("GET", base, token=key, params={"q": "bob"}).json()["suppressions"][0]["scope"] == "nordics"
    page = log_api.call("GET", base, token=key, params={"limit": 1}).json()
    assert len(page["suppressions"]) == 1 and page["next_cursor"] is not None

    no_reason = log_api.call("DELETE", f"{base}/ada@example.com", token=key)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    assert log_api.call("DELETE", f"{base}/ada@example.com", token=key, params={"reason": "asked by phone"}).status_code == 204
    assert log_api.call("GET", f"{base}/ada@example.com", token=key).json()["suppressed"] is False
    assert SuppressionStore(redis_client).lookup("alpha", ["ada@example.com"])[0] is None
    assert log_api.call("DELETE", f"{base}/ada@example.com", token=key, params={"reason": "x"}).status_code == 404
    with pg_engine.connect() as connection:
        audit = connection.execute(
            text("SELECT actor, after->>'why' FROM audit_log WHERE action = 'suppression.remove' AND target = 'ada@example.com'")
        ).one()
    assert audit[0].startswith("key:") and audit[1] == "asked by phone"

    bravo = log_api.key("bravo")
    assert log_api.call("GET", base, token=bravo).status_code == 404
    assert log_api.call("GET", f"{base}/bob@example.com", token=bravo).status_code == 404
    reader = log_api.key("alpha", scopes=("events:read",))
    assert log_api.call("POST", base, token=reader, json={"address": "c@example.com"}).status_code == 403


def test_import_keeps_good_rows_reports_bad_ones_by_line_and_exports(log_api: Api, redis_client: redis.Redis) -> None:
    key = log_api.key("alpha")
    base = "/v1/tenants/alpha/suppressions"
    body = "address,scope,reason\nann@example.com\nnot an address\nbea@example.com,nordics,complaint\ncid@example.com,,bogus\n"
    plain = log_api.call("POST", f"{base}/import", token=key, content=body, headers={"Content-Type": "text/csv"})
    assert plain.status_code == 200, plain.text
    report = plain.json()
    assert report["added"] == 2 and report["already"] == 0
    assert [e.split(":")[0] for e in report["errors"]] == ["line 3", "line 5"]
    assert "reason" in report["errors"][1]

    upload = "dee@example.com\nann@example.com\n"
    form = log_api.call("POST", f"{base}/import", token=key, files={"file": ("old-tool.csv", upload, "text/csv")})
    assert form.status_code == 200, form.text
    assert form.json() == {"added": 1, "already": 1, "errors": []}
    assert SuppressionStore(redis_client).lookup("alpha", ["dee@example.com"])[0] is not None

    wrong = log_api.call("POST", f"{base}/import", token=key, json={"a": 1})
    assert wrong.status_code == 422 and wrong.json()["field"] == "file"

    exported = log_api.call("GET", base, token=key, headers={"Accept": "text/csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["address"], r["scope"], r["reason"]) for r in rows} == {
        ("ann@example.com", "", "import"),
        ("bea@example.com", "nordics", "complaint"),
        ("dee@example.com", "", "import"),
    }
    assert log_api.call("POST", f"{base}/import", token=log_api.key("bravo"), content=body).status_code == 404


def test_a_hundred_thousand_row_import_fits_the_upload_limit(log_api: Api) -> None:
    key = log_api.key("alpha")
    body = "".join(f"lead{i}@example.com\n" for i in range(100_000))
    started = time.monotonic()
    response = log_api.call(
        "POST", "/v1/tenants/alpha/suppressions/import", token=key, content=body, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["added"] == 100_000
    print(f"100,000-row import over HTTP: {time.monotonic() - started:.1f}s")
