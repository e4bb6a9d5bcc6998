"""``POST /v1/events`` and ``GET /v1/events/{id}`` with tenant keys: the tenant comes from the key."""

from __future__ import annotations

import redis
from control_kit import ADMIN_TOKEN, INGEST_TOKEN, Api, lead

from pipeline.state.status import StatusStore


def test_a_tenant_key_submits_for_its_own_tenant_and_reads_only_its_events(full_api: Api, redis_client: redis.Redis) -> None:
    full_api.tenant("alpha")
    full_api.tenant("bravo")
    alpha, bravo = full_api.key("alpha"), full_api.key("bravo")

    response = full_api.call("POST", "/v1/events", token=alpha, json=lead("a-1"))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == ["a-1"]
    status = StatusStore(redis_client)
    assert status.get("alpha", "a-1") is not None
    assert status.get("default", "a-1") is None

    mine = full_api.call("GET", "/v1/events/a-1", token=alpha)
    assert mine.status_code == 200 and mine.json()["tenant"] == "alpha"
    assert full_api.call("GET", "/v1/events/a-1?tenant=alpha", token=alpha).status_code == 200
    # another tenant's event is exactly a missing one, whether or not it names the tenant
    for path in ("/v1/events/a-1", "/v1/events/a-1?tenant=alpha", "/v1/events/nosuch"):
        refused = full_api.call("GET", path, token=bravo)
        assert refused.status_code == 404, (path, refused.text)
        assert refused.json() == {"detail": f"no event {path.split('/')[3].split('?')[0]!r}"}
    # bravo's own event of the same id is its own
    assert full_api.call("POST", "/v1/events", token=bravo, json=lead("a-1")).json()["accepted"] == ["a-1"]
    assert full_api.call("GET", "/v1/events/a-1", token=bravo).json()["tenant"] == "bravo"


def test_an_event_naming_another_tenant_is_refused_on_the_tenant_field(full_api: Api, redis_client: redis.Redis) -> None:
    full_api.tenant("alpha")
    alpha = full_api.key("alpha")
    status = StatusStore(redis_client)

    refused = full_api.call("POST", "/v1/events", token=alpha, json=lead("x-1", tenant="bravo"))
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["index"] == 0 and error["event_id"] == "x-1"
    assert error["errors"][0].startswith("tenant: ")
    assert status.get("bravo", "x-1") is None and status.get("alpha", "x-1") is None

    # in a batch only that event is refused; indexes are the request's own, invalid events still reported
    mixed = [lead("x-2"), lead("x-3", tenant="nosuch"), {"event_id": "x-4"}, lead("x-5", tenant="alpha")]
    response = full_api.call("POST", "/v1/events", token=alpha, json=mixed)
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["accepted"] == ["x-2", "x-5"]
    assert [e["index"] for e in body["errors"]] == [1, 2]
    assert body["errors"][0]["errors"][0].startswith("tenant: ")
    assert not body["errors"][1]["errors"][0].startswith("tenant: ")
    assert status.get("nosuch", "x-3") is None


def test_scopes_are_enforced_and_ingest_tokens_keep_working(full_api: Api, redis_client: redis.Redis) -> None:
    full_api.tenant("alpha")
    writer = full_api.key("alpha", scopes=("events:write",))
    reader = full_api.key("alpha", scopes=("events:read",))
    manager = full_api.key("alpha", scopes=("accounts:manage",))

    assert full_api.call("POST", "/v1/events", token=writer, json=lead("s-1")).status_code == 202
    assert full_api.call("GET", "/v1/events/s-1", token=writer).status_code == 403
    assert full_api.call("GET", "/v1/events/s-1", token=reader).status_code == 200
    assert full_api.call("POST", "/v1/events", token=reader, json=lead("s-2")).status_code == 403
    assert full_api.call("POST", "/v1/events", token=manager, json=lead("s-3")).status_code == 403
    assert StatusStore(redis_client).get("alpha", "s-2") is None

    # the deployment's ingest token: any tenant, named in the event or the query (default: "default")
    assert full_api.call("POST", "/v1/events", token=INGEST_TOKEN, json=lead("d-1")).status_code == 202
    assert full_api.call("POST", "/v1/events", token=INGEST_TOKEN, json=lead("d-2", tenant="alpha")).status_code == 202
    assert full_api.call("GET", "/v1/events/d-1", token=INGEST_TOKEN).json()["tenant"] == "default"
    assert full_api.call("GET", "/v1/events/d-2?tenant=alpha", token=INGEST_TOKEN).status_code == 200
    assert full_api.call("GET", "/v1/events/s-1?tenant=alpha", token=INGEST_TOKEN).status_code == 200

    # unknown, malformed and revoked keys (and admin tokens, which manage tenants) are all a 401
    key_id = full_api.call("GET", "/v1/tenants/alpha/keys").json()["keys"][0]["key_id"]
    assert full_api.call("DELETE", f"/v1/tenants/alpha/keys/{key_id}").status_code in (200, 204)
    for token in (writer, "mp_live_nosuchkey000_" + "x" * 43, "not-a-token", ADMIN_TOKEN):
        response = full_api.call("POST", "/v1/events", token=token, json=lead("u-1"))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"
