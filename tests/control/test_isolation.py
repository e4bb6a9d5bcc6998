"""Tenant isolation: every path and method of the OpenAPI document, with tenant B's key on tenant A's resources, is a 404."""

from __future__ import annotations

import re
from typing import Any

import redis
from control_kit import Api, account_body, lead
from sqlalchemy import Engine, text

from pipeline.archive.consumer import Archiver
from pipeline.control import suppressions
from pipeline.control.context import ControlContext
from pipeline.control.events import retry_event_id
from pipeline.state import keys
from pipeline.state.status import StatusStore, Transition
from pipeline.state.suppression import SuppressionStore

BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/v1/tenants/{tenant}"): {"display_name": "stolen"},
    ("POST", "/v1/tenants/{tenant}/accounts"): account_body("evil"),
    ("PATCH", "/v1/tenants/{tenant}/accounts/{name}"): {"from_name": "pwned", "password": "x"},
    ("PUT", "/v1/tenants/{tenant}/routes"): {"routes": []},
    ("POST", "/v1/tenants/{tenant}/keys"): {"scopes": ["accounts:manage"]},
    ("POST", "/v1/tenants/{tenant}/accounts/{name}/verify"): {"send_test_to": "x@example.com"},
    ("POST", "/v1/events"): lead("alpha-ev-1", tenant="alpha"),
    ("POST", "/v1/events/retry"): {"campaign": "spring"},
    ("POST", "/v1/tenants/{tenant}/suppressions"): {"address": "stolen@example.com"},
}
ALPHA_EVENT = "alpha-ev-1"
ALPHA_ADDRESS = "alpha-lead@example.com"
# Paths whose tenant comes from the key: naming A's tenant in the body is a 422 on `tenant` (see
# pipeline.http.ingest); other such paths must answer 404 or show B nothing of A's.
NOT_404 = {("POST", "/v1/events"): 422}


def _rows_of_alpha(engine: Engine) -> dict[str, Any]:
    """A digest of every row tenant A owns."""
    alpha = "(SELECT id FROM tenants WHERE slug = 'alpha')"
    where = {"tenants": f"id = {alpha}", "audit_log": f"tenant_id = {alpha}"}
    with engine.connect() as connection:
        return {
            table: connection.execute(
                text(
                    f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t "
                    f"WHERE {where.get(table, f'tenant_id = {alpha}')}"
                )
            ).scalar()
            for table in ("tenants", "smtp_accounts", "routes", "api_keys", "tenant_data_keys", "audit_log")
        } | {
            table: connection.execute(
                text(f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t WHERE tenant = 'alpha'")
            ).scalar()
            for table in ("delivery_events", "suppressions")
        }


def test_tenant_b_key_gets_404_on_every_path_and_method_of_tenant_a(
    full_api: Api, control: ControlContext, redis_client: redis.Redis
) -> None:
    api = full_api
    api.tenant("alpha")
    api.tenant("bravo")
    api.call("POST", "/v1/tenants/alpha/accounts?verify=false", json=account_body("a-main"))
    api.call("PUT", "/v1/tenants/alpha/routes", json={"routes": [{"match": {"list": "x"}, "accounts": ["a-main"]}]})
    api.key("alpha")
    alpha_key_id = api.call("GET", "/v1/tenants/alpha/keys").json()["keys"][0]["key_id"]
    bravo = api.key("bravo")
    assert api.call("POST", "/v1/events", token=api.key("alpha"), json=lead(ALPHA_EVENT)).status_code == 202
    status = StatusStore(redis_client)
    status.record([Transition("alpha", ALPHA_EVENT, "failed", {"reason": "expired"})])
    archiver = Archiver(redis_client, control.engine, consumer="isolation")
    while archiver.run_once(block_ms=50).entries:
        pass  # A's event is in the delivery log too (GET /v1/events, retry)
    suppressions.add(control.engine, SuppressionStore(redis_client), "alpha", ALPHA_ADDRESS, "unsubscribe")
    event_before = status.get("alpha", ALPHA_EVENT)
    before = _rows_of_alpha(control.engine)

    schema = api.client.app.openapi()  # type: ignore[attr-defined]
    values = {"tenant": "alpha", "name": "a-main", "key_id": alpha_key_id, "event_id": ALPHA_EVENT, "address": ALPHA_ADDRESS}
    tried: list[str] = []
    for path, operations in schema["paths"].items():
        if "{tenant}" not in path and not path.startswith("/v1/events"):
            continue
        for method in operations:
            concrete = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            body = BODIES.get((method.upper(), path))
            if method == "delete" and path.endswith("/suppressions/{address}"):
                concrete += "?reason=stolen"  # a complete request, so only the tenant can refuse it
            response = api.call(method.upper(), concrete, token=bravo, json=body)
            expected = NOT_404.get((method.upper(), path), 404)
            shows_nothing = "{tenant}" not in path and response.status_code == 200 and ALPHA_EVENT not in response.text
            assert response.status_code == expected or shows_nothing, (method, path, response.status_code, response.text)
            assert "a-main" not in response.text and "Alpha" not in response.text and ALPHA_ADDRESS not in response.text
            tried.append(f"{method.upper()} {path}")
    refused = api.call("POST", "/v1/events", token=bravo, json=BODIES[("POST", "/v1/events")]).json()
    assert refused["accepted"] == [] and refused["errors"][0]["errors"][0].startswith("tenant: ")
    assert status.get("alpha", ALPHA_EVENT) == event_before  # A's event neither read nor changed
    # an unknown tenant answers exactly the same
    assert api.call("GET", "/v1/tenants/nosuch/accounts", token=bravo).json()["detail"] == "no tenant 'nosuch'"
    assert api.call("GET", "/v1/tenants/alpha/accounts", token=bravo).json()["detail"] == "no tenant 'alpha'"
    assert _rows_of_alpha(control.engine) == before  # nothing of A changed
    print(f"isolation: {len(tried)} paths x methods tried, all 404 (POST /v1/events: 422 on tenant)")
    assert len(tried) >= 19
    assert {"POST /v1/events", "GET /v1/events/{event_id}", "GET /v1/events", "POST /v1/events/retry"} <= set(tried)
    assert {"GET /v1/tenants/{tenant}/suppressions", "DELETE /v1/tenants/{tenant}/suppressions/{address}"} <= set(tried)
    assert {"POST /v1/tenants/{tenant}/suppressions/import"} <= set(tried)
    assert redis_client.exists(keys.event("alpha", retry_event_id(ALPHA_EVENT))) == 0  # B's retry sent none of A's
