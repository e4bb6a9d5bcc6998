"""Workers' view of the registry: tenant snapshots from PostgreSQL, isolated, and dropped on change."""

from __future__ import annotations

import threading
import time
from typing import Any

from control_kit import Api, account_body
from sqlalchemy import event

from pipeline.control.context import ControlContext
from pipeline.registry.cache import Registry
from pipeline.registry.listener import ChangeListener
from pipeline.registry.refs import account_ref, split_ref
from pipeline.registry.sources import DatabaseSource


def source(control: ControlContext, plugin_manager: Any) -> DatabaseSource:
    return DatabaseSource(control.engine, control.keyring, plugin_manager)


def two_tenants_with_main(api: Api) -> None:
    for slug in ("acme", "globex"):
        api.tenant(slug)
        body = account_body("main", password=f"SG.pw-of-{slug}-0123456789", from_email=f"hello@{slug}.example")
        assert api.call("POST", f"/v1/tenants/{slug}/accounts?verify=false", json=body).status_code == 201
        assert api.call("POST", f"/v1/tenants/{slug}/accounts/main/activate").status_code == 200


def test_references_keep_the_default_tenants_bare_names_and_qualify_the_others() -> None:
    assert account_ref("default", "sg-main") == "sg-main"
    assert account_ref("acme", "main") == "acme/main"
    assert split_ref("acme/main") == ("acme", "main") and split_ref("sg-main") == ("default", "sg-main")


def test_two_tenants_may_both_name_an_account_main_without_sharing_anything(
    api: Api, control: ControlContext, plugin_manager: Any
) -> None:
    two_tenants_with_main(api)
    registry = Registry(source(control, plugin_manager))
    acme, globex = registry.account("acme/main"), registry.account("globex/main")
    assert acme is not None and globex is not None
    assert acme.resolved.name == "acme/main" and globex.resolved.name == "globex/main"
    assert acme.resolved.password is not None and globex.resolved.password is not None
    assert acme.resolved.password.get_secret_value() == "SG.pw-of-acme-0123456789"
    assert globex.resolved.password.get_secret_value() == "SG.pw-of-globex-0123456789"
    assert acme.config.from_email == "hello@acme.example" and registry.tenant("acme").active == "main"
    assert "SG.pw" not in repr(acme) and "SG.pw" not in repr(registry.tenant("acme"))


def test_an_unknown_tenant_has_no_accounts_and_no_pool(control: ControlContext, plugin_manager: Any) -> None:
    snapshot = Registry(source(control, plugin_manager)).tenant("nobody")
    assert snapshot.version == 0 and not snapshot.accounts
    assert snapshot.own_pool("c", "l", None) is None


def test_resolution_order_is_route_then_sender_default_then_active(
    api: Api, control: ControlContext, plugin_manager: Any
) -> None:
    api.tenant("acme")
    for name, extra in (("a", {}), ("b", {"default_for": ["agent-7"]}), ("c", {})):
        assert api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body(name, **extra)).status_code == 201
    api.call("POST", "/v1/tenants/acme/accounts/a/activate")
    routes = [{"match": {"campaign": "spring"}, "accounts": ["c"]}]
    assert api.call("PUT", "/v1/tenants/acme/routes", json={"routes": routes}).status_code == 200, "routes"
    snapshot = Registry(source(control, plugin_manager)).tenant("acme")
    assert snapshot.own_pool("spring", None, "agent-7").names == ("c",)  # type: ignore[union-attr]
    assert snapshot.own_pool("autumn", None, "agent-7").names == ("b",)  # type: ignore[union-attr]
    assert snapshot.own_pool("autumn", None, None).names == ("a",)  # type: ignore[union-attr]


def test_a_change_reaches_a_listening_worker_within_two_seconds(
    api: Api, control: ControlContext, plugin_manager: Any, pg_url: str
) -> None:
    two_tenants_with_main(api)
    body = account_body("second", from_email="second@acme.example")
    assert api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=body).status_code == 201
    registry = Registry(source(control, plugin_manager), recheck=3600)  # only the notification can tell it
    listener = ChangeListener(registry, pg_url).start()
    try:
        assert registry.tenant("acme").active == "main"
        registry.tenant("globex")
        time.sleep(0.5)  # the listener is connected
        started = time.monotonic()
        assert api.call("POST", "/v1/tenants/acme/accounts/second/activate").status_code == 200
        while "acme" in registry.cached() and time.monotonic() - started < 5:
            time.sleep(0.02)
        took = time.monotonic() - started
        assert registry.tenant("acme").active == "second" and took < 2.0, took
        assert "globex" in registry.cached()  # other tenants keep their snapshot
    finally:
        listener.stop()


def test_the_version_check_catches_a_change_without_any_notification(
    api: Api, control: ControlContext, plugin_manager: Any
) -> None:
    two_tenants_with_main(api)
    now = [0.0]
    registry = Registry(source(control, plugin_manager), recheck=1.0, clock=lambda: now[0])
    assert registry.tenant("acme").accounts["main"].usable
    assert api.call("POST", "/v1/tenants/acme/accounts/main/pause").status_code == 200
    assert registry.tenant("acme").accounts["main"].usable  # within the recheck interval: still the old snapshot
    now[0] = 1.5
    assert not registry.tenant("acme").accounts["main"].usable


def test_the_cache_is_bounded_and_tells_what_it_drops(control: ControlContext, plugin_manager: Any) -> None:
    dropped: list[str] = []
    registry = Registry(source(control, plugin_manager), max_tenants=2, on_replace=lambda old, new: dropped.append(old.tenant))
    for slug in ("t1", "t2", "t3"):
        registry.tenant(slug)
    assert registry.cached() == ["t2", "t3"] and dropped == ["t1"]


def test_a_batchs_tenants_load_in_one_round_of_queries_and_match_single_loads(
    api: Api, control: ControlContext, plugin_manager: Any
) -> None:
    two_tenants_with_main(api)
    api.tenant("empty")
    db = source(control, plugin_manager)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(control.engine, "before_cursor_execute", count)
    try:
        registry = Registry(db)
        registry.prefetch(["acme", "globex", "empty", "nobody", "acme"])
    finally:
        event.remove(control.engine, "before_cursor_execute", count)
    assert len(statements) == 4, statements  # tenants, data keys, accounts, routes: not four per tenant
    assert registry.cached() == ["acme", "globex", "empty", "nobody"]
    for slug in ("acme", "globex", "empty", "nobody"):
        alone = db.load(slug)
        held = registry.tenant(slug)
        assert (held.version, held.active, sorted(held.accounts)) == (alone.version, alone.active, sorted(alone.accounts))
    main = registry.account("globex/main")
    assert main is not None and main.resolved.password is not None
    assert main.resolved.password.get_secret_value() == "SG.pw-of-globex-0123456789"
    registry.prefetch(["acme", "globex"])  # all held: no query at all
    assert len(statements) == 4


def test_with_a_listener_the_version_check_runs_on_its_thread_not_in_a_lookup(
    api: Api, control: ControlContext, plugin_manager: Any, pg_url: str
) -> None:
    two_tenants_with_main(api)
    checks: list[str] = []

    class Counting(DatabaseSource):
        def changed_since(self, mark: Any) -> Any:
            checks.append(threading.current_thread().name)
            return super().changed_since(mark)

    registry = Registry(Counting(control.engine, control.keyring, plugin_manager), recheck=0.2)
    registry.tenant("acme")
    listener = ChangeListener(registry, pg_url).start()
    try:
        deadline = time.monotonic() + 20  # generous: the listener connects first, and the box may be busy
        while len(checks) < 3 and time.monotonic() < deadline:
            registry.tenant("acme")
            time.sleep(0.1)
        assert len(checks) >= 3 and set(checks) == {"mailpipe-registry-listener"}, checks
    finally:
        listener.stop()
    assert not registry.checked_in_background  # no listener: lookups check again themselves


def test_between_full_checks_only_tenants_changed_since_the_last_check_are_read(
    api: Api, control: ControlContext, plugin_manager: Any
) -> None:
    two_tenants_with_main(api)
    full: list[int] = []

    class Counting(DatabaseSource):
        def versions(self, tenants: Any) -> dict[str, int]:
            full.append(len(list(tenants)))
            return super().versions(tenants)

    now = [0.0]
    registry = Registry(
        Counting(control.engine, control.keyring, plugin_manager), recheck=1.0, full_every=3600, clock=lambda: now[0]
    )
    registry.tenant("acme"), registry.tenant("globex")
    registry.check_versions()  # the first check compares everything and takes the database's clock
    assert full == [2]
    assert api.call("POST", "/v1/tenants/acme/accounts/main/pause").status_code == 200
    now[0] = 1.5
    assert not registry.tenant("acme").accounts["main"].usable  # caught by the incremental check
    assert "globex" in registry.cached() and full == [2]  # without reading every tenant's version again
    now[0] = 3601.0
    registry.tenant("globex")
    assert full == [2, 2]  # the periodic full check
