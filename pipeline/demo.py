"""`mailpipe demo`: the whole pipeline on an embedded default, with a second tenant connecting its own SMTP.

Starts a private redis-server (unless MAILPIPE_DEMO_BROKER_URL names one), a private PostgreSQL
cluster (unless MAILPIPE_DEMO_DATABASE_URL names a database), the platform's local SMTP server and a
second one standing for a tenant's own provider (both STARTTLS + AUTH, storing mail in maildirs),
and `mailpipe serve`. The platform's accounts come from the config file (`config apply`); tenant
`globex` connects its own two mailboxes through the HTTP API (verified before saving) and activates
one. Workers start; sample leads go out for both tenants (one suppressed recipient, one bad event,
one missing template variable, one address the server rejects); halfway through globex switches its
active mailbox over the API. The table shows every tenant's mail on the right accounts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import redis
from rich.console import Console
from rich.table import Table

from pipeline.config import load_config
from pipeline.control.build import control_context
from pipeline.control.file_accounts import apply_file
from pipeline.db import migrate
from pipeline.db.engine import make_engine
from pipeline.db.localpg import LocalPostgres
from pipeline.runtime.processes import ServeProcess, WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, make_tls_files, scripted_rcpt
from pipeline.smtp.netutil import free_port
from pipeline.state.localredis import LocalRedis
from pipeline.state.status import StatusStore
from pipeline.state.suppression import SuppressionStore
from pipeline.submit import Submitter

ACCOUNTS = ("eu-mailbox", "outreach-mailbox", "main-mailbox")
TENANT = "globex"
TENANT_MAILBOXES = ("globex-main", "globex-backup")
TENANT_EVENTS = 20
TIMEOUT = 90.0


def demo_config(port: int, ca_file: str, broker_url: str, database_url: str, serve_port: int, tenant_port: int) -> str:
    return f"""
[broker]
url = "{broker_url}"

[database]
url = "{database_url}"

[secrets]
master_keys = ["env:MAILPIPE_DEMO_MASTER_KEY"]

[serve]
port = {serve_port}
admin_tokens = ["env:MAILPIPE_DEMO_ADMIN_TOKEN"]
allow_hosts = ["127.0.0.1/32"]  # the demo's SMTP servers are local: allowed here, refused by default
allow_ports = [{tenant_port}]
trusted_ca_file = "{ca_file}"

[templates]
dir = "templates"

[retry]
base_delay = 1.0
max_attempts = 4

[[accounts]]
name = "eu-mailbox"
host = "127.0.0.1"
port = {port}
security = "starttls"
username = "eu-mailbox"
password = "env:MAILPIPE_DEMO_PW_EU"
from_email = "hej@acme.example"
from_name = "Acme Danmark"
reply_to = "dk-sales@acme.example"
ca_file = "{ca_file}"
limits = {{ per_second = 50 }}

[[accounts]]
name = "outreach-mailbox"
host = "127.0.0.1"
port = {port}
security = "starttls"
username = "outreach-mailbox"
password = "env:MAILPIPE_DEMO_PW_OUTREACH"
from_email = "sam@acme.example"
from_name = "Sam from Acme"
ca_file = "{ca_file}"
limits = {{ per_second = 20 }}

[[accounts]]
name = "main-mailbox"
host = "127.0.0.1"
port = {port}
security = "starttls"
username = "main-mailbox"
password = "env:MAILPIPE_DEMO_PW_MAIN"
from_email = "hello@acme.example"
from_name = "Acme"
reply_to = "replies@acme.example"
ca_file = "{ca_file}"
limits = {{ per_second = 50 }}

[[routes]]
name = "denmark"
match = {{ list = "denmark" }}
accounts = ["eu-mailbox"]

[[routes]]
name = "cold-outreach"
match = {{ campaign = "cold-outreach" }}
accounts = ["outreach-mailbox"]

[default]
account = "main-mailbox"
"""


def sample_events(count: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for i in range(count):
        kind = i % 3
        lead = {"first_name": f"Lead{i}", "lead_id": i, "product": "Acme CRM", "company": f"Company {i}", "city": "Aarhus"}
        event: dict[str, object] = {"event_id": f"demo-{i:04d}", "to": f"lead{i}@example.net", "data": lead}
        if kind == 0:
            event |= {"list": "denmark", "template": "welcome"}
        elif kind == 1:
            event |= {"campaign": "cold-outreach", "template": "outreach"}
        else:
            event |= {"list": "newsletter", "template": "welcome"}
        events.append(event)
    events.append(
        {
            "event_id": "demo-suppressed",
            "to": "unsubscribed@example.net",
            "list": "denmark",
            "template": "welcome",
            "data": {"first_name": "X", "lead_id": 0, "product": "Acme"},
        }
    )
    events.append({"event_id": "demo-missing-var", "to": "novar@example.net", "template": "welcome", "data": {"first_name": "Y"}})
    events.append(
        {
            "event_id": "demo-hard-bounce",
            "to": "no-such-user@example.net",
            "campaign": "cold-outreach",
            "template": "outreach",
            "data": {"first_name": "Z", "company": "Gone Inc"},
        }
    )
    events.append({"event_id": "demo-bad-address", "to": "not-an-address", "template": "welcome"})
    return events


def run_demo(out: Path, *, events: int, console: Console) -> int:
    started = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    (out / "templates").mkdir(parents=True)
    for item in resources.files("pipeline.demo_data").joinpath("templates").iterdir():
        (out / "templates" / item.name).write_text(item.read_text(encoding="utf-8"), encoding="utf-8")
    tls = make_tls_files(out / "tls")
    passwords = {name: secrets.token_urlsafe(16) for name in ACCOUNTS}
    env = {
        "MAILPIPE_DEMO_PW_EU": passwords["eu-mailbox"],
        "MAILPIPE_DEMO_PW_OUTREACH": passwords["outreach-mailbox"],
        "MAILPIPE_DEMO_PW_MAIN": passwords["main-mailbox"],
        "MAILPIPE_DEMO_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "MAILPIPE_DEMO_ADMIN_TOKEN": secrets.token_urlsafe(24),
    }
    os.environ.update(env)
    with contextlib.ExitStack() as stack:  # whatever was started stops, however the demo ends
        database_url = os.environ.get("MAILPIPE_DEMO_DATABASE_URL")
        if not database_url:
            local_pg = LocalPostgres(out / "postgres").start()
            stack.callback(local_pg.stop)
            database_url = local_pg.url("postgres")
            console.print(f"started private PostgreSQL at 127.0.0.1:{local_pg.port}")
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        broker_url = os.environ.get("MAILPIPE_DEMO_BROKER_URL")
        if not broker_url:
            (out / "redis").mkdir()
            local_redis = LocalRedis(out / "redis").start()
            stack.callback(local_redis.stop)
            broker_url = local_redis.url
            console.print(f"started private redis-server at {broker_url}")
        rejects = {"no-such-user": "550 5.1.1 <no-such-user@example.net>: Recipient address rejected: User unknown"}
        smtp = DevSMTPServer(tls_files=tls, users=passwords, maildir=out / "maildir", rcpt_responder=scripted_rcpt(rejects))
        port = smtp.start("starttls")
        stack.callback(smtp.stop)
        console.print(f"started the platform's SMTP server (STARTTLS + AUTH) on 127.0.0.1:{port}")
        tenant_passwords = {name: secrets.token_urlsafe(16) for name in TENANT_MAILBOXES}
        tenant_smtp = DevSMTPServer(tls_files=tls, users=tenant_passwords, maildir=out / "maildir-globex")
        tenant_port = tenant_smtp.start("starttls")
        stack.callback(tenant_smtp.stop)
        console.print(f"started {TENANT}'s own SMTP server (its provider) on 127.0.0.1:{tenant_port}")
        config_path = out / "mailpipe.toml"
        serve_port = free_port()
        text = demo_config(port, tls.ca_file, broker_url, database_url, serve_port, tenant_port)
        config_path.write_text(text, encoding="utf-8")
        config = load_config(config_path)
        control = control_context(config)
        assert control is not None
        stack.callback(control.engine.dispose)
        applied = apply_file(control, config)
        console.print(f"config apply: the platform's {len(applied.created)} accounts are in the database")
        server = ServeProcess(config_path, env=env, log_path=out / "serve.log").start(serve_port)
        stack.callback(server.stop)
        admin = {"Authorization": f"Bearer {env['MAILPIPE_DEMO_ADMIN_TOKEN']}"}
        api = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{serve_port}", headers=admin, timeout=30))
        workers = WorkerProcess(config_path, processes=2, threads=4, env=env, log_path=out / "worker.log").start()
        stack.callback(workers.stop)
        console.print(f"started mailpipe serve on :{serve_port} and 2 worker processes (logs in {out})")
        connect_tenant(api, console, tenant_port, tenant_passwords)
        client = redis.Redis.from_url(config.redis_url)
        SuppressionStore(client).add("default", "unsubscribed@example.net", "unsubscribed", source="demo")
        submitter = Submitter(config)
        report = submitter.submit(sample_events(events), source="demo")
        console.print(f"submitted: {len(report.accepted)} accepted, {len(report.errors)} refused at submit")
        for error in report.errors:
            console.print(f"  refused event {error.event_id}: {'; '.join(error.errors)}", highlight=False)
        status = StatusStore(client)
        half = TENANT_EVENTS // 2
        first = submitter.submit(tenant_events(0, half), source="demo").accepted
        console.print(f"submitted {len(first)} events for {TENANT}")
        first_outcomes = _wait_final(status, first, TENANT)
        switch = api.post(f"/v1/tenants/{TENANT}/accounts/globex-backup/activate")
        console.print(f"{TENANT} switches its active mailbox to globex-backup over the API: HTTP {switch.status_code}")
        second = submitter.submit(tenant_events(half, TENANT_EVENTS), source="demo").accepted
        console.print(f"submitted {len(second)} more events for {TENANT}")
        outcomes = _wait_final(status, report.accepted)
        tenant_outcomes = first_outcomes | _wait_final(status, second, TENANT)
        _print_outcomes(console, status, {"default": outcomes, TENANT: tenant_outcomes})
        received = smtp.snapshot()
        console.print(f"\nreceived by the platform's SMTP server: {len(received)} messages, stored in {out / 'maildir'}")
        console.print(f"received by {TENANT}'s SMTP server: {len(tenant_smtp.snapshot())} messages")
        total = len(outcomes) + len(tenant_outcomes)
        pending = [e for e, o in (outcomes | tenant_outcomes).items() if o is None]
        elapsed = time.monotonic() - started
        if pending:
            console.print(f"[red]{len(pending)} events not final after {TIMEOUT:.0f}s[/red]")
            return 1
        console.print(f"all {total} accepted events final in {elapsed:.1f}s; try: mailpipe log demo-0000 -c {config_path}")
        return 0
    return 1  # not reached: the stack re-raises


def connect_tenant(api: httpx.Client, console: Console, port: int, passwords: dict[str, str]) -> None:
    """What a platform's UI does when its customer clicks "+ Add Service", then "Set as active"."""
    api.put(f"/v1/tenants/{TENANT}", json={"display_name": "Globex Corporation"}).raise_for_status()
    for name in TENANT_MAILBOXES:
        body = {
            "name": name,
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "security": "starttls",
            "username": name,
            "password": passwords[name],
            "from_email": f"{name.split('-')[1]}@globex.example",
            "from_name": "Globex",
        }
        created = api.post(f"/v1/tenants/{TENANT}/accounts", json=body)  # verified before it is saved
        created.raise_for_status()
        report = created.json().get("verification") or {}
        steps = " ".join(f"{s['step']} {'ok' if s['ok'] else 'FAILED'};" for s in report.get("steps", []))
        console.print(f"{TENANT} connected {name} over the API (HTTP {created.status_code}; verify: {steps or 'ok'})")
    api.post(f"/v1/tenants/{TENANT}/accounts/globex-main/activate").raise_for_status()
    console.print(f"{TENANT} set globex-main as active")


def tenant_events(start: int, stop: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"globex-{i:04d}",
            "tenant": TENANT,
            "to": f"prospect{i}@example.org",
            "subject": "Globex quarterly update",
            "text": f"Hello prospect {i}, here is our update.",
        }
        for i in range(start, stop)
    ]


def _wait_final(status: StatusStore, event_ids: list[str], tenant: str = "default") -> dict[str, str | None]:
    deadline = time.monotonic() + TIMEOUT
    outcomes = status.outcomes(event_ids, tenant)
    while time.monotonic() < deadline and any(o is None for o in outcomes.values()):
        time.sleep(0.25)
        outcomes = status.outcomes(event_ids, tenant)
    return outcomes


def _print_outcomes(console: Console, status: StatusStore, by_tenant: dict[str, dict[str, str | None]]) -> None:
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for tenant, outcomes in by_tenant.items():
        for event_id, outcome in outcomes.items():
            record = status.get(tenant, event_id)
            last: dict[str, Any] = next((h for h in reversed(record.history) if h.get("route")), {}) if record else {}
            counts[(tenant, last.get("route", "-"), last.get("account", "-"), outcome or "pending")] += 1
    table = Table("tenant", "route", "account", "outcome", "events", title="demo outcomes")
    for (tenant, route, account, outcome), n in sorted(counts.items()):
        table.add_row(tenant, route, account, outcome, str(n))
    console.print(table)
    rejected = status.dead_letters()
    for event_id, letter in rejected.items():
        console.print(f"dead-letter {event_id}: {json.dumps(letter['error'])}", highlight=False)
