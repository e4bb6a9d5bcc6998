"""`mailpipe demo`: the whole pipeline on an embedded default.

Starts a private redis-server (unless MAILPIPE_DEMO_BROKER_URL names one) and a local SMTP server
with STARTTLS + AUTH that stores mail in a maildir, writes a config with two routed accounts and a
default, starts workers, submits sample leads (one suppressed recipient, one bad event, one
missing template variable, one address the server rejects), waits until every accepted event is
final, prints outcomes per route and account, and stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, make_tls_files, scripted_rcpt
from pipeline.state.localredis import LocalRedis
from pipeline.state.status import StatusStore
from pipeline.state.suppression import SuppressionStore
from pipeline.submit import Submitter

ACCOUNTS = ("eu-mailbox", "outreach-mailbox", "main-mailbox")
TIMEOUT = 90.0


def demo_config(port: int, ca_file: str, broker_url: str) -> str:
    return f"""
[broker]
url = "{broker_url}"

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
    }
    os.environ.update(env)
    local_redis: LocalRedis | None = None
    broker_url = os.environ.get("MAILPIPE_DEMO_BROKER_URL")
    if not broker_url:
        (out / "redis").mkdir()
        local_redis = LocalRedis(out / "redis").start()
        broker_url = local_redis.url
        console.print(f"started private redis-server at {broker_url}")
    smtp = DevSMTPServer(
        tls_files=tls,
        users=passwords,
        maildir=out / "maildir",
        rcpt_responder=scripted_rcpt(
            {"no-such-user": "550 5.1.1 <no-such-user@example.net>: Recipient address rejected: User unknown"}
        ),
    )
    port = smtp.start("starttls")
    console.print(f"started local SMTP server (STARTTLS + AUTH) on 127.0.0.1:{port}")
    config_path = out / "mailpipe.toml"
    config_path.write_text(demo_config(port, tls.ca_file, broker_url), encoding="utf-8")
    config = load_config(config_path)
    workers = WorkerProcess(config_path, processes=2, threads=4, env=env, log_path=out / "worker.log").start()
    console.print(f"started 2 worker processes (log: {out / 'worker.log'})")
    try:
        client = redis.Redis.from_url(config.redis_url)
        SuppressionStore(client).add("default", "unsubscribed@example.net", "unsubscribed", source="demo")
        report = Submitter(config).submit(sample_events(events), source="demo")
        console.print(f"submitted: {len(report.accepted)} accepted, {len(report.errors)} refused at submit")
        for error in report.errors:
            console.print(f"  refused event {error.event_id}: {'; '.join(error.errors)}", highlight=False)
        status = StatusStore(client)
        outcomes = _wait_final(status, report.accepted)
        _print_outcomes(console, status, outcomes)
        received = smtp.snapshot()
        console.print(f"\nreceived by the local SMTP server: {len(received)} messages, stored in {out / 'maildir'}")
        pending = [eid for eid, o in outcomes.items() if o is None]
        elapsed = time.monotonic() - started
        if pending:
            console.print(f"[red]{len(pending)} events not final after {TIMEOUT:.0f}s[/red]")
            return 1
        console.print(
            f"all {len(outcomes)} accepted events final in {elapsed:.1f}s; try: mailpipe log demo-0000 -c {config_path}"
        )
        return 0
    finally:
        workers.stop()
        smtp.stop()
        if local_redis:
            local_redis.stop()


def _wait_final(status: StatusStore, event_ids: list[str]) -> dict[str, str | None]:
    deadline = time.monotonic() + TIMEOUT
    outcomes = status.outcomes(event_ids)
    while time.monotonic() < deadline and any(o is None for o in outcomes.values()):
        time.sleep(0.25)
        outcomes = status.outcomes(event_ids)
    return outcomes


def _print_outcomes(console: Console, status: StatusStore, outcomes: dict[str, str | None]) -> None:
    counts: Counter[tuple[str, str, str]] = Counter()
    for event_id, outcome in outcomes.items():
        record = status.get("default", event_id)
        last = next((h for h in reversed(record.history) if h.get("route")), {}) if record else {}
        counts[(last.get("route", "-"), last.get("account", "-"), outcome or "pending")] += 1
    table = Table("route", "account", "outcome", "events", title="demo outcomes")
    for (route, account, outcome), n in sorted(counts.items()):
        table.add_row(route, account, outcome, str(n))
    console.print(table)
    rejected = status.dead_letters()
    for event_id, record in rejected.items():
        console.print(f"dead-letter {event_id}: {json.dumps(record['error'])}", highlight=False)
