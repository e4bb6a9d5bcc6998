"""Tenants' reply mailboxes from the registry: real PostgreSQL (control plane API), Redis and Dovecot.

`inbox watch` picks up an account added with reply tracking, records replies on that tenant's
events only, drops the mailbox when the account goes, reconnects with changed credentials, and
shares the mailboxes with other watchers: each watched by exactly one, taken over when one stops
or dies.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually
from fastapi import FastAPI
from fastapi.testclient import TestClient
from inbox_kit import IMAP_PASSWORD, IMAP_USER, Dovecot
from inbox_mails import reply

from pipeline.config import load_config
from pipeline.context import StageContext, build_context
from pipeline.control.build import control_context
from pipeline.http.control import routers
from pipeline.inbox.index import MessageIndex
from pipeline.inbox.lease import lease_holder
from pipeline.inbox.supervisor import Supervisor, reply_mailboxes
from pipeline.models import LeadEvent
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.smtp.mime import message_id_for
from pipeline.state.status import Transition

ADMIN = "inbox-tests-admin-token-0123456789"
LEASE = 3.0
INTERVAL = 0.3
Supervise = Callable[["StageContext"], Supervisor]


@dataclass
class Deployment:
    """A database-configured deployment: its config file, the admin API, and the Dovecot mailbox."""

    path: Path
    client: TestClient
    dovecot: Dovecot
    smtp: DevSMTPServer

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers={"Authorization": f"Bearer {ADMIN}"}, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def imap(self, password: str = IMAP_PASSWORD) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.dovecot.tls_port,
            "security": "tls",
            "username": IMAP_USER,
            "password": password,
        }

    def add_account(self, tenant: str, name: str, *, reply_tracking: bool = True) -> None:
        self.call("PUT", f"/v1/tenants/{tenant}", json={"display_name": tenant.title()})
        body = {
            "name": name,
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": self.smtp.ports["starttls"],
            "security": "starttls",
            "username": "alpha",
            "password": "alpha-pw",
            "from_email": f"{name}@{tenant}.example",
            "imap": self.imap(),
            "reply_tracking": reply_tracking,
        }
        self.call("POST", f"/v1/tenants/{tenant}/accounts?verify=false", json=body)

    def context(self) -> StageContext:
        """A context of its own (own Redis client, own database engine), as another host would have."""
        return build_context(load_config(self.path))


@pytest.fixture
def deployment(
    tmp_path: Path,
    redis_url: str,
    pg_url: str,
    tls_files: TLSFiles,
    dovecot: Dovecot,
    smtp_server: DevSMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    monkeypatch.setenv("TEST_PW_MAILPIPE_MASTER", base64.urlsafe_b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("TEST_PW_MAILPIPE_ADMIN", ADMIN)
    path = tmp_path / "mailpipe.toml"
    path.write_text(f"""
[broker]
url = "{redis_url}"

[database]
url = "{pg_url}"

[secrets]
master_keys = ["env:TEST_PW_MAILPIPE_MASTER"]

[serve]
admin_tokens = ["env:TEST_PW_MAILPIPE_ADMIN"]
allow_hosts = ["127.0.0.1/32"]
allow_ports = [{smtp_server.ports["starttls"]}, {dovecot.tls_port}]
trusted_ca_file = "{tls_files.ca_file}"

[send]
message_id_domain = "mail.sender.example"
""")
    monkeypatch.setenv("MAILPIPE_CONFIG", str(path))
    control = control_context(load_config(path))
    assert control is not None
    app = FastAPI()
    for router in routers():
        app.include_router(router)
    app.state.control = control
    with TestClient(app) as client:
        yield Deployment(path, client, dovecot, smtp_server)
    control.engine.dispose()


@pytest.fixture
def supervise() -> Iterator[Supervise]:
    """Run supervisors on threads (as `inbox watch` would); stopped and joined after the test."""
    started: list[tuple[Supervisor, threading.Thread]] = []

    def start(ctx: StageContext) -> Supervisor:
        supervisor = Supervisor(ctx, registry=reply_mailboxes(ctx), lease_seconds=LEASE, interval=INTERVAL)
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        started.append((supervisor, thread))
        return supervisor

    yield start
    for supervisor, thread in started:
        supervisor.stop.set()
        thread.join(40)
        assert not thread.is_alive(), "the supervisor did not stop"


def send_original(ctx: StageContext, tenant: str, event_id: str) -> str:
    """Accept an event and mark it sent with its Message-ID indexed (as classify does); returns the Message-ID."""
    assert ctx.status.accept(
        [LeadEvent(event_id=event_id, tenant=tenant, to="lead@customer.example", subject="Hi", text="Hello")]
    )
    ctx.status.record([Transition(tenant, event_id, "sent", {"stage": "classify"})])
    message_id = message_id_for(tenant, event_id, ctx.config.message_id_domain())
    MessageIndex(ctx.redis).remember([(tenant, message_id, event_id)])
    return message_id


def state(ctx: StageContext, tenant: str, event_id: str) -> str | None:
    found = ctx.status.get(tenant, event_id)
    return found.state if found is not None else None


def test_an_added_account_is_watched_its_replies_land_on_its_tenant_and_deleting_it_stops_it(
    deployment: Deployment, supervise: Supervise
) -> None:
    ctx = deployment.context()
    supervisor = supervise(ctx)
    acme_mid = send_original(ctx, "acme", "ev-acme")
    globex_mid = send_original(ctx, "globex", "ev-globex")

    deployment.add_account("acme", "main")

    watching = eventually(supervisor.watching, lambda w: "account:acme/main" in w, timeout=15)
    assert list(watching) == ["account:acme/main"]
    deployment.dovecot.append(reply(acme_mid, message_id="<r-acme@customer.example>"))
    # The same mailbox holds a reply to another tenant's mail: acme's mailbox must not record it on globex.
    deployment.dovecot.append(reply(globex_mid, message_id="<r-globex@customer.example>"))
    assert eventually(lambda: state(ctx, "acme", "ev-acme"), lambda s: s == "replied", timeout=20) == "replied"
    poller = supervisor.poller("account:acme/main")
    assert poller is not None
    counts = eventually(lambda: dict(poller.stats.counts), lambda c: sum(c.values()) >= 2, timeout=20)
    assert counts == {"reply": 1, "ignored": 1}
    assert state(ctx, "globex", "ev-globex") == "sent"
    recorded = ctx.status.get("acme", "ev-acme")
    assert recorded is not None and recorded.history[-1]["mailbox"] == "account:acme/main"
    assert lease_holder(ctx.redis, "account:acme/main") == supervisor.owner
    assert eventually(deployment.dovecot.sessions, lambda n: n == 1, timeout=10) == 1

    deployment.call("DELETE", "/v1/tenants/acme/accounts/main")

    assert eventually(supervisor.watching, lambda w: not w, timeout=15) == {}
    assert eventually(lambda: lease_holder(ctx.redis, "account:acme/main"), lambda h: h is None, timeout=15) is None
    assert eventually(deployment.dovecot.sessions, lambda n: n == 0, timeout=15) == 0


def test_an_account_without_reply_tracking_is_watched_once_it_is_turned_on(deployment: Deployment, supervise: Supervise) -> None:
    ctx = deployment.context()
    supervisor = supervise(ctx)
    deployment.add_account("acme", "quiet", reply_tracking=False)
    deployment.add_account("acme", "marker")  # picked up: proves the registry was read after "quiet" was added

    eventually(supervisor.watching, lambda w: "account:acme/marker" in w, timeout=15)
    assert list(supervisor.watching()) == ["account:acme/marker"]

    deployment.call("PATCH", "/v1/tenants/acme/accounts/quiet?verify=false", json={"reply_tracking": True})

    watching = eventually(supervisor.watching, lambda w: len(w) == 2, timeout=15)
    assert sorted(watching) == ["account:acme/marker", "account:acme/quiet"]


def test_changed_imap_credentials_restart_the_watcher_with_the_new_ones(deployment: Deployment, supervise: Supervise) -> None:
    ctx = deployment.context()
    supervisor = supervise(ctx)
    deployment.add_account("acme", "main")
    before = eventually(supervisor.watching, lambda w: "account:acme/main" in w, timeout=15)["account:acme/main"]
    first = supervisor.poller("account:acme/main")
    assert first is not None
    eventually(lambda: first.stats.connects, lambda n: n >= 1, timeout=15)

    patch = {"imap": deployment.imap(password="not-the-password")}
    deployment.call("PATCH", "/v1/tenants/acme/accounts/main?verify=false", json=patch)

    changed = eventually(supervisor.watching, lambda w: w.get("account:acme/main") not in (None, before), timeout=15)
    second = supervisor.poller("account:acme/main")
    assert second is not None and second is not first and first.stop.is_set()
    stats = eventually(lambda: second.stats, lambda s: s.errors >= 1, timeout=15)
    assert stats.connects == 0 and "login as bounces failed" in (stats.last_error or "")
    assert "not-the-password" not in (stats.last_error or "")

    deployment.call("PATCH", "/v1/tenants/acme/accounts/main?verify=false", json={"imap": deployment.imap()})

    eventually(supervisor.watching, lambda w: w.get("account:acme/main") not in (None, changed["account:acme/main"]), timeout=15)
    third = supervisor.poller("account:acme/main")
    assert third is not None
    assert eventually(lambda: third.stats.connects, lambda n: n >= 1, timeout=15) >= 1


MAILBOXES = ["account:acme/main", "account:acme/second", "account:globex/main"]


def add_three(deployment: Deployment) -> None:
    deployment.add_account("acme", "main")
    deployment.add_account("acme", "second")
    deployment.add_account("globex", "main")


def holders(ctx: StageContext) -> dict[str, str | None]:
    return {name: lease_holder(ctx.redis, name) for name in MAILBOXES}


def test_two_watchers_watch_each_mailbox_once_and_hand_over_when_one_stops(deployment: Deployment, supervise: Supervise) -> None:
    add_three(deployment)
    first, second = supervise(deployment.context()), supervise(deployment.context())

    def both() -> tuple[dict[str, str], dict[str, str]]:
        return first.watching(), second.watching()

    one, two = eventually(both, lambda w: len(w[0]) + len(w[1]) == 3, timeout=20)
    assert sorted([*one, *two]) == MAILBOXES and not set(one) & set(two)
    time.sleep(4 * INTERVAL)  # several reconciles later, still nobody watches a mailbox twice
    one, two = both()
    assert sorted([*one, *two]) == MAILBOXES
    assert eventually(deployment.dovecot.sessions, lambda n: n == 3, timeout=15) == 3

    leaving, staying = (first, second) if one else (second, first)
    leaving.stop.set()

    assert sorted(eventually(staying.watching, lambda w: len(w) == 3, timeout=LEASE + 10)) == MAILBOXES
    assert set(holders(staying.ctx).values()) == {staying.owner}
    assert eventually(deployment.dovecot.sessions, lambda n: n == 3, timeout=15) == 3


def test_a_killed_watcher_process_is_taken_over_in_a_lease_time(
    deployment: Deployment, supervise: Supervise, tmp_path: Path
) -> None:
    add_three(deployment)
    ctx = deployment.context()
    log = (tmp_path / "watch.log").open("wb")
    timing = ["--lease-seconds", str(LEASE), "--interval", str(INTERVAL)]
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "inbox", "watch", "--config", str(deployment.path), *timing],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        held = eventually(lambda: holders(ctx), lambda h: all(h.values()), timeout=60)
        owners = set(held.values())
        assert len(owners) == 1 and f":{process.pid}:" in owners.pop()
        supervisor = supervise(ctx)
        time.sleep(5 * INTERVAL)
        assert supervisor.watching() == {}, "a second watcher took a mailbox the first one holds"
        assert eventually(deployment.dovecot.sessions, lambda n: n == 3, timeout=15) == 3

        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at = time.monotonic()

        watching = eventually(supervisor.watching, lambda w: len(w) == 3, timeout=LEASE + 10, interval=0.05)
        took = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
    assert sorted(watching) == MAILBOXES
    assert took <= LEASE + 2 * INTERVAL + 1.0, f"takeover took {took:.1f} s with a {LEASE:g} s lease"
    assert set(holders(ctx).values()) == {supervisor.owner}
    assert eventually(deployment.dovecot.sessions, lambda n: n == 3, timeout=15) == 3
    print(f"takeover after SIGKILL: {took:.2f} s (lease {LEASE:g} s, interval {INTERVAL:g} s)")
