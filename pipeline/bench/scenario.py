"""What the benchmark sends: a config with three accounts on the sink, a real template, lead events.

Accounts alpha, beta and gamma point at smtp-sink (`security = "none"`, no AUTH) with limits far
above what two cores can reach, so the limiter runs on every message but never makes one wait.
Routing: list `nordics` → alpha; campaign `outreach` → beta or gamma (least used today, the
rotation read on every message); everything else → gamma (default). The template is HTML only,
so render also derives the text part, and `[serve]` is set so every message carries a signed
one-click List-Unsubscribe URL, as bulk-sender rules require. The wire message is ~2 KB.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config, load_config
from pipeline.context import build_context
from pipeline.models import LeadEvent, RoutedMessage
from pipeline.smtp.mime import build_message
from pipeline.stages.render import render

TEMPLATE = "product-update"
SUBJECT = "{{ first_name }}, a quick idea for {{ company }}"
HTML = """<html><body>
<p>Hi {{ first_name }},</p>
<p>{{ company }} is growing its {{ team }} team in {{ city }}: teams like yours spend hours
every week moving leads between inboxes and the CRM. Acme Pipeline does that for you:</p>
<ul>
{% for feature in features %}  <li><strong>{{ feature.name }}</strong>: {{ feature.detail }}</li>
{% endfor %}</ul>
<p>Teams of {{ employees }} save about {{ hours_saved }} hours a month.
<a href="https://acme.example/demo?lead={{ lead_id }}">Book a demo</a> or just reply.</p>
<p>Sam Carter, Acme Pipeline</p>
</body></html>
"""
FEATURES = [
    {"name": "Capture", "detail": "every lead in one queue"},
    {"name": "Routing", "detail": "the right rep, by territory"},
    {"name": "Follow-up", "detail": "from each rep's own mailbox"},
]
ACCOUNTS = ("alpha", "beta", "gamma")
NOT_BINDING_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class Settings:
    """Worker and broker knobs the benchmark may vary (never code)."""

    processes: int = 2
    threads: int = 4
    prefetch: int = 64
    pool_size: int = 10
    # redis-py >= 6 caps each client's pool at 100 connections; the send stage's asyncio.gather over
    # a batch needs one per in-flight ledger call, so the default cap fails whole send batches with
    # MaxConnectionsError under load. Raised through the state store's URL; 0 keeps redis-py's default.
    redis_max_connections: int = 1000


def config_text(redis_url: str, sink_port: int, secret_file: Path, settings: Settings, extra: str = "") -> str:
    """The bench's mailpipe.toml; `extra` is appended as is (more sections, e.g. `[database]` for the tenants run)."""
    accounts = "".join(
        f"""
[[accounts]]
name = "{name}"
host = "127.0.0.1"
port = {sink_port}
security = "none"
from_email = "{name}@sender.example"
from_name = "{name.title()} Sender"
reply_to = "replies-{name}@sender.example"
local_hostname = "bench.localhost"
pool_size = {settings.pool_size}
timeout = 30
limits = {{ per_second = {NOT_BINDING_PER_SECOND} }}
"""
        for name in ACCOUNTS
    )
    state_url = f"{redis_url}?max_connections={settings.redis_max_connections}" if settings.redis_max_connections else redis_url
    return f"""
[broker]
url = "{redis_url}"
prefetch = {settings.prefetch}

[redis]
url = "{state_url}"

[templates]
dir = "templates"

[serve]
public_url = "https://mail.bench.example"
secret = "file:{secret_file}"
{accounts}
[[routes]]
name = "nordics"
match = {{ list = "nordics" }}
accounts = ["alpha"]

[[routes]]
name = "outreach"
match = {{ campaign = "outreach" }}
accounts = ["beta", "gamma"]

[default]
account = "gamma"
{extra}"""


def write_scenario(directory: Path, redis_url: str, sink_port: int, settings: Settings, extra: str = "") -> Path:
    """Write templates, the link-signing secret and mailpipe.toml into `directory`; return the config path."""
    templates = directory / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / f"{TEMPLATE}.subject").write_text(SUBJECT, encoding="utf-8")
    (templates / f"{TEMPLATE}.html").write_text(HTML, encoding="utf-8")
    secret_file = directory / "link-secret"
    if not secret_file.exists():
        secret_file.write_text(os.urandom(32).hex(), encoding="utf-8")
        secret_file.chmod(0o600)
    path = directory / "mailpipe.toml"
    path.write_text(config_text(redis_url, sink_port, secret_file, settings, extra), encoding="utf-8")
    return path


def tenant_slug(i: int, tenants: int) -> str:
    """The tenant of event number `i` when events are spread round-robin over `tenants` tenants (0: `default`)."""
    return f"t{i % tenants:05d}" if tenants else "default"


def lead_event(prefix: str, i: int, tenants: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"{prefix}-{i:07d}",
        "to": f"lead{i}@receiver.example",
        "to_name": f"Lead Number{i}",
        "template": TEMPLATE,
        "data": {
            "first_name": f"Name{i}",
            "company": f"Company {i % 997} ApS",
            "team": ("sales", "support", "marketing")[i % 3],
            "city": ("Aarhus", "Oslo", "Malmö", "Helsinki")[i % 4],
            "employees": 20 + i % 400,
            "hours_saved": 10 + i % 30,
            "lead_id": i,
            "features": FEATURES,
        },
        "tags": ["bench"],
        "metadata": {"source": "bench"},
    }
    if tenants:
        event["tenant"] = tenant_slug(i, tenants)
    if i % 3 == 0:
        event["list"] = "nordics"
    elif i % 3 == 1:
        event["campaign"] = "outreach"
    return event


def lead_events(prefix: str, start: int, count: int, tenants: int = 0) -> Iterator[dict[str, Any]]:
    for i in range(start, start + count):
        yield lead_event(prefix, i, tenants)


def write_jsonl(path: Path, prefix: str, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for event in lead_events(prefix, 0, count):
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
    return path


def wire_message(config: Config) -> bytes:
    """The exact bytes the pipeline puts on the wire for one benchmark lead (the baseline sends these)."""
    ctx = build_context(config)  # render touches no Redis
    event = LeadEvent.model_validate(lead_event("sample", 1))
    account = config.account("beta")
    routed = RoutedMessage(
        message=render(event, ctx),
        account=account.name,
        route="outreach",
        from_addr=account.from_email,
        from_name=account.from_name,
        reply_to=account.reply_to,
        envelope_from=account.from_email,
        first_attempt_at=0.0,
    )
    data: bytes = build_message(routed, max_bytes=config.send.max_message_bytes)
    return data


def load_scenario(path: Path) -> Config:
    return load_config(path)
