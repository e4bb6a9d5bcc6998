"""Workers follow the registry: each tenant's mail leaves through its own accounts, changes apply live."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from eventually import wait_until_final
from tenants_kit import Tenants

from pipeline.config import load_config
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter


def event(tenant: str, i: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{tenant}-{i:05d}",
        "tenant": tenant,
        "to": f"lead{i}@{tenant}-leads.example",
        "subject": f"Hello {i}",
        "text": f"Message {i} for {tenant}",
        **extra,
    }


def users_of(received: list[Any], tenant: str) -> Counter[str | None]:
    return Counter(m.auth_user for m in received if m.rcpt_to[0].endswith(f"@{tenant}-leads.example"))


def test_each_tenant_sends_through_its_own_active_account_even_when_both_are_named_main(
    tenants: Tenants, tenant_config: Callable[..., Path], start_workers: Callable[..., Any], redis_client: redis.Redis
) -> None:
    for slug, server, user in (("acme", "one", "acme-a"), ("globex", "two", "globex")):
        tenants.tenant(slug)
        tenants.account(slug, "main", server, user, verify=True)  # verify-on-save against the real server
        tenants.call("POST", f"/v1/tenants/{slug}/accounts/main/activate")
    path = tenant_config()
    start_workers(path, processes=2, threads=4)
    submitter = Submitter(load_config(path))
    report = submitter.submit([event(t, i) for t in ("acme", "globex") for i in range(20)])
    assert len(report.accepted) == 40 and not report.errors
    status = StatusStore(redis_client)
    for slug in ("acme", "globex"):
        outcomes = wait_until_final(status, [e for e in report.accepted if e.startswith(slug)], timeout=60, tenant=slug)
        assert Counter(outcomes.values()) == {"sent": 20}, (slug, outcomes)
    one = tenants.smtp["one"].wait_for(20, timeout=10)
    two = tenants.smtp["two"].wait_for(20, timeout=10)
    assert users_of(one, "acme") == {"acme-a": 20} and users_of(two, "globex") == {"globex": 20}
    assert not users_of(one, "globex") and not users_of(two, "acme")
    assert {m.header("From") for m in one} == {"Acme main <main@acme.example>"}


def test_a_tenant_without_a_usable_account_fails_with_no_account_and_never_borrows_another(
    tenants: Tenants, tenant_config: Callable[..., Path], start_workers: Callable[..., Any], redis_client: redis.Redis
) -> None:
    tenants.tenant("acme")
    tenants.account("acme", "main", "one", "acme-a")
    tenants.call("POST", "/v1/tenants/acme/accounts/main/activate")
    tenants.tenant("empty")
    path = tenant_config()
    start_workers(path, processes=1, threads=4)
    report = Submitter(load_config(path)).submit([event("empty", i) for i in range(3)])
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90, tenant="empty")
    assert set(outcomes.values()) == {"failed"}
    found = StatusStore(redis_client).get("empty", report.accepted[0])
    assert found is not None
    history = found.history
    assert any(entry.get("reason") == "no_account" for entry in history), history
    assert not tenants.smtp["one"].snapshot() and not tenants.smtp["two"].snapshot()


def test_with_the_platform_fallback_such_mail_leaves_through_the_default_tenants_active_account(
    tenants: Tenants, tenant_config: Callable[..., Path], start_workers: Callable[..., Any], redis_client: redis.Redis
) -> None:
    tenants.tenant("default")
    tenants.account("default", "platform", "two", "platform")
    tenants.call("POST", "/v1/tenants/default/accounts/platform/activate")
    tenants.tenant("lonely")
    path = tenant_config('fallback = "platform"')
    start_workers(path, processes=1, threads=4)
    report = Submitter(load_config(path)).submit([event("lonely", i) for i in range(5)])
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90, tenant="lonely")
    assert set(outcomes.values()) == {"sent"}
    assert users_of(tenants.smtp["two"].wait_for(5, timeout=10), "lonely") == {"platform": 5}


def test_follow_ups_leave_from_the_mailbox_that_sent_the_first_message_while_new_recipients_rotate(
    tenants: Tenants, tenant_config: Callable[..., Path], start_workers: Callable[..., Any], redis_client: redis.Redis
) -> None:
    tenants.tenant("acme")
    tenants.account("acme", "a", "one", "acme-a")
    tenants.account("acme", "b", "one", "acme-b")
    tenants.call("POST", "/v1/tenants/acme/accounts/a/activate")
    routes = [{"name": "seq", "match": {"campaign": "seq"}, "accounts": ["a", "b"], "strategy": "round_robin"}]
    tenants.call("PUT", "/v1/tenants/acme/routes", json={"routes": routes})
    path = tenant_config()
    start_workers(path, processes=1, threads=4)
    submitter = Submitter(load_config(path))
    status = StatusStore(redis_client)
    first_user: dict[str, str | None] = {}
    for step in range(3):
        batch = [event("acme", step * 100 + i, to=f"r{i}@acme-leads.example", campaign="seq") for i in range(8)]
        report = submitter.submit(batch)
        outcomes = wait_until_final(status, report.accepted, timeout=90, tenant="acme")
        assert set(outcomes.values()) == {"sent"}, outcomes
        received = tenants.smtp["one"].wait_for(8 * (step + 1), timeout=10)
        for message in received[-8:] if step else received:
            recipient = message.rcpt_to[0]
            if step == 0:
                first_user[recipient] = message.auth_user
            else:
                assert message.auth_user == first_user[recipient], (step, recipient)
    assert set(first_user.values()) == {"acme-a", "acme-b"}  # new recipients were spread over both


def probe_until(
    tenants: Tenants,
    submitter: Submitter,
    start: int,
    obeys: Callable[[str, Any], bool],
    *,
    seconds: float = 3.0,
    expect_all: bool = True,
    **fields: Any,
) -> float:
    """Submit a probe every 0.1 s for `seconds` after a change; the latest submit time (s after the change)
    of a probe that did not obey (server name, message) — 0.0 when every probe obeyed."""
    sent_at: dict[str, float] = {}
    began = time.monotonic()
    i = start
    while time.monotonic() - began < seconds:
        probe = event("acme", i, **fields)
        submitter.submit([probe])
        sent_at[probe["to"]] = time.monotonic() - began
        i += 1
        time.sleep(0.1)
    got: dict[str, tuple[str, Any]] = {}
    deadline = time.monotonic() + (30 if expect_all else 2)
    while time.monotonic() < deadline:
        got = {m.rcpt_to[0]: (name, m) for name, server in tenants.smtp.items() for m in server.snapshot()}
        if all(to in got for to in sent_at):
            break
        time.sleep(0.1)
    if expect_all:
        assert all(to in got for to in sent_at), "some probes were never delivered"
    late = [t for to, t in sent_at.items() if to in got and not obeys(*got[to])]
    return max(late, default=0.0)


def test_live_changes_apply_to_mail_submitted_within_two_seconds(
    tenants: Tenants, tenant_config: Callable[..., Path], start_workers: Callable[..., Any]
) -> None:
    tenants.tenant("acme")
    fast = {"per_second": 50}  # the smtp preset's 5/s would make each round of 30 probes take 6 s to arrive
    tenants.account("acme", "a", "one", "acme-a", limits=fast)
    tenants.call("POST", "/v1/tenants/acme/accounts/a/activate")
    # Mail waiting on the paused account re-checks it every second (default 30 s), so it leaves soon after the resume.
    path = tenant_config("\n[rate_limit]\npaused_recheck = 1\n")
    start_workers(path, processes=2, threads=4)
    submitter = Submitter(load_config(path))
    submitter.submit([event("acme", i) for i in range(5)])  # workers now hold acme's snapshot
    tenants.smtp["one"].wait_for(5, timeout=60)
    took: dict[str, float] = {}

    tenants.account("acme", "b", "two", "acme-b", limits=fast)  # a new account on the other provider ...
    tenants.call("POST", "/v1/tenants/acme/accounts/b/activate")  # ... made active
    took["new account + activate"] = probe_until(tenants, submitter, 1000, lambda server, m: server == "two")

    patch = {"username": "acme-a", "password": "pw-acme-a-123"}  # b now logs in with other credentials
    tenants.call("PATCH", "/v1/tenants/acme/accounts/b?verify=false", json=patch)
    took["password change"] = probe_until(tenants, submitter, 2000, lambda server, m: server == "two" and m.auth_user == "acme-a")

    routes = [{"name": "x", "match": {"campaign": "x"}, "accounts": ["a"]}]
    tenants.call("PUT", "/v1/tenants/acme/routes", json={"routes": routes})
    took["route change"] = probe_until(tenants, submitter, 3000, lambda server, m: server == "one", campaign="x")

    tenants.call("POST", "/v1/tenants/acme/accounts/b/pause")  # the active account paused: its mail waits
    before = len(tenants.smtp["two"].snapshot())
    took["pause"] = probe_until(tenants, submitter, 4000, lambda server, m: False, expect_all=False)
    assert len(tenants.smtp["two"].snapshot()) - before <= 20  # nothing beyond what was already on its way
    tenants.call("POST", "/v1/tenants/acme/accounts/b/resume")  # ... and leaves once it is resumed
    tenants.smtp["two"].wait_for(before + 30, timeout=60)
    print("change-to-effect seconds:", {k: round(v, 2) for k, v in took.items()})
    assert all(t < 2.0 for t in took.values()), took
