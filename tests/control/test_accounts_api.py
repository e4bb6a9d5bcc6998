"""Accounts over the API: write-only secrets, "Set as active", routes, file-managed rows, keys, input checks."""

from __future__ import annotations

from control_kit import Api, account_body


def test_an_account_is_saved_without_verification_and_its_password_is_write_only(api: Api) -> None:
    api.tenant("acme")
    created = api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg-main"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["password_set"] is True and "password" not in body
    assert body["host"] is None and body["provider"] == "sendgrid"
    assert body["default"] is True  # the tenant's first account becomes its active one
    listed = api.call("GET", "/v1/tenants/acme/accounts").json()["accounts"]
    assert [a["name"] for a in listed] == ["sg-main"]
    assert "SG.secret" not in api.call("GET", "/v1/tenants/acme/accounts/sg-main").text


def test_a_patch_without_password_keeps_the_stored_one(api: Api) -> None:
    api.tenant("acme")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg-main"))
    patched = api.call("PATCH", "/v1/tenants/acme/accounts/sg-main?verify=false", json={"from_name": "Acme Sales"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["from_name"] == "Acme Sales" and patched.json()["password_set"] is True


def test_activate_switches_the_one_active_account_atomically(api: Api) -> None:
    api.tenant("acme")
    for name in ("a", "b", "c"):
        api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body(name))
    assert api.call("POST", "/v1/tenants/acme/accounts/c/activate").json()["default"] is True
    defaults = [a["name"] for a in api.call("GET", "/v1/tenants/acme/accounts").json()["accounts"] if a["default"]]
    assert defaults == ["c"]


def test_pause_and_resume(api: Api) -> None:
    api.tenant("acme")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a"))
    assert api.call("POST", "/v1/tenants/acme/accounts/a/pause").json()["status"] == "paused"
    assert api.call("POST", "/v1/tenants/acme/accounts/a/resume").json()["status"] == "active"


def test_routes_are_replaced_whole_and_an_unknown_account_is_named(api: Api) -> None:
    api.tenant("acme")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a"))
    bad = api.call(
        "PUT",
        "/v1/tenants/acme/routes",
        json={"routes": [{"match": {"list": "nordics"}, "accounts": ["a"]}, {"match": {"campaign": "x"}, "accounts": ["ghost"]}]},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "routes[1].accounts" and "ghost" in bad.json()["detail"]
    good = api.call(
        "PUT",
        "/v1/tenants/acme/routes",
        json={"routes": [{"name": "eu", "match": {"list": "nordics", "sender": "sam@acme.example"}, "accounts": ["a"]}]},
    )
    assert good.status_code == 200, good.text
    assert api.call("GET", "/v1/tenants/acme/routes").json()["routes"][0]["match"] == {
        "list": "nordics",
        "sender": "sam@acme.example",
    }
    assert api.call("DELETE", "/v1/tenants/acme/accounts/a").status_code == 409  # still routed to


def test_cr_or_lf_in_any_header_field_is_a_422_naming_the_field(api: Api) -> None:
    api.tenant("acme")
    for field in ("from_name", "username", "host", "description"):
        response = api.call(
            "POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a", **{field: "x\r\nBcc: victim@example.com"})
        )
        assert response.status_code == 422, (field, response.text)
        assert response.json()["field"] == field
    for field in ("from_email", "reply_to", "envelope_from"):
        response = api.call(
            "POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a", **{field: "a@b.example\nBcc: v@example.com"})
        )
        assert response.status_code == 422 and response.json()["field"] == field


def test_bad_input_is_a_problem_naming_the_field(api: Api) -> None:
    api.tenant("acme")
    unknown = api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a", provider="nosuchmail"))
    assert unknown.status_code == 422 and unknown.json()["field"] == "provider"
    oversize = api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a", from_name="x" * 5000))
    assert oversize.status_code == 422 and oversize.json()["field"] == "from_name"
    extra = api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a", smuggled=1))
    assert extra.status_code == 422 and extra.json()["field"] == "smuggled"
    huge = api.call(
        "POST",
        "/v1/tenants/acme/accounts?verify=false",
        content=b"{" + b" " * 400_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def test_keys_are_shown_once_stored_hashed_scoped_and_revocable(api: Api) -> None:
    api.tenant("acme")
    key = api.key("acme", scopes=("events:read",))
    assert key.startswith("mp_live_")
    listed = api.call("GET", "/v1/tenants/acme/keys").json()["keys"]
    assert key not in str(listed) and listed[0]["prefix"] == key[: len(listed[0]["prefix"])]
    assert api.call("GET", "/v1/tenants/acme", token=key).status_code == 200
    assert api.call("GET", "/v1/tenants/acme/accounts", token=key).status_code == 403  # lacks accounts:manage
    assert api.call("GET", "/v1/tenants", token=key).status_code == 403  # admin only
    api.call("DELETE", f"/v1/tenants/acme/keys/{listed[0]['key_id']}")
    assert api.call("GET", "/v1/tenants/acme", token=key).status_code == 401
    assert api.call("GET", "/v1/tenants/acme", token="mp_live_nope").status_code == 401


def test_the_audit_log_names_who_did_what_and_shows_secrets_only_as_changed(api: Api) -> None:
    api.tenant("acme")
    key = api.key("acme")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a"), token=key)
    api.call("PATCH", "/v1/tenants/acme/accounts/a?verify=false", json={"password": "new-secret-value-42"}, token=key)
    entries = api.call("GET", "/v1/tenants/acme/audit").json()["entries"]
    assert [e["action"] for e in entries][:2] == ["account.update", "account.create"]
    assert entries[0]["actor"].startswith("key:") and entries[0]["after"]["password"] == "changed"
    text = str(entries)
    assert "new-secret-value-42" not in text and "SG.secret-of-a" not in text


def test_the_tenant_list_pages_by_cursor(api: Api) -> None:
    for slug in ("t1", "t2", "t3"):
        api.tenant(slug)
    first = api.call("GET", "/v1/tenants?limit=2").json()
    assert [t["tenant"] for t in first["tenants"]] == ["t1", "t2"] and first["next_cursor"] == "t2"
    second = api.call("GET", "/v1/tenants?limit=2&after=t2").json()
    assert [t["tenant"] for t in second["tenants"]] == ["t3"] and second["next_cursor"] is None
