"""`mailpipe status [--watch]`: queues, workers, accounts and the last hour's outcomes at a glance."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

import redis
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.cli.core import ConfigOption, load_or_exit
from pipeline.cli.output import ScriptFriendlyConsole, print_json
from pipeline.config import Config
from pipeline.observe import snapshot
from pipeline.plugin_host.manager import plugin_manager_for
from pipeline.registry.build import build_registry

console = ScriptFriendlyConsole()
err = Console(stderr=True)
HEALTH_STYLE = {"up": "green", "paused": "yellow", "auth_failed": "red"}


class StatusView:
    """Reads everything once per refresh; Redis clients and account limits are reused."""

    def __init__(self, config: Config, tenant: str) -> None:
        self.config = config
        self.tenant = tenant
        self.state = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.broker = redis.Redis.from_url(config.broker.url, socket_timeout=5) if config.broker.kind == "redis" else None
        self.limits = snapshot.account_limits(config)
        # With a database (or for any tenant but the deployment's own), accounts come from the registry.
        use_registry = tenant != "default" or config.database.resolved_url() is not None
        self.registry = build_registry(config, plugin_manager_for(config)) if use_registry else None

    def accounts(self, now: float) -> list[snapshot.AccountView]:
        if self.registry is not None:
            return snapshot.tenant_accounts(self.state, self.registry, self.tenant, self.config.rate_limit.timezone, now)
        return snapshot.accounts(self.state, self.config, self.limits, now)

    def render(self) -> Group:
        now = time.time()
        heading = f"mailpipe status  {time.strftime('%Y-%m-%d %H:%M:%S')}  tenant {self.tenant}"
        parts: list[Table | Text] = [Text(heading, style="bold")]
        parts += self._broker_tables(now)
        parts.append(self._accounts_table(now))
        parts.append(self._outcomes_table(now))
        return Group(*parts)

    def data(self) -> dict[str, Any]:
        """What the tables show, as plain data: ``mailpipe status --json``."""
        now = time.time()
        counts, cut = snapshot.recent_outcomes(self.state, self.tenant, now=now)
        out: dict[str, Any] = {"tenant": self.tenant, "at": now, "queues": None, "workers": None}
        if self.broker is not None:
            broker = self.config.broker
            out["queues"] = [asdict(q) for q in snapshot.queue_depths(self.broker, broker.namespace, now)]
            seen = snapshot.workers_seen(self.broker, broker.namespace, broker.heartbeat_timeout_ms, now)
            out["workers"] = [asdict(w) for w in seen]
        out["accounts"] = [asdict(a) for a in self.accounts(now)]
        out["last_hour"] = dict(counts.most_common())
        out["last_hour_truncated"] = cut
        out["totals"] = asdict(snapshot.totals(self.state))
        return out

    def _broker_tables(self, now: float) -> list[Table | Text]:
        if self.broker is None:
            return [Text(f"queues: not shown for a {self.config.broker.kind} broker", style="dim")]
        broker = self.config.broker
        queues = Table(
            "queue", "ready", "in flight", "delayed", "dead", "oldest", title="Queues (broker messages, ≤100 emails each)"
        )
        for q in snapshot.queue_depths(self.broker, broker.namespace, now):
            oldest = _age(q.oldest_age) if q.ready else "-"
            queues.add_row(q.queue, str(q.ready), str(q.in_flight), str(q.delayed), str(q.dead), oldest)
        seen = snapshot.workers_seen(self.broker, broker.namespace, broker.heartbeat_timeout_ms, now)
        alive = [w for w in seen if w.alive]
        gone = f", {len(seen) - len(alive)} gone" if len(seen) > len(alive) else ""
        workers = Text(f"Workers (broker heartbeats): {len(alive)} alive{gone}")
        if not alive:
            workers.stylize("red")
        return [queues, workers]

    def _accounts_table(self, now: float) -> Table:
        table = Table(
            "account", "provider", "health", "sent today / cap", "rate (effective / configured)", "throttles 1h", title="Accounts"
        )
        for a in self.accounts(now):
            cap = f"{a.sent_today} / {a.daily_cap}" if a.daily_cap else f"{a.sent_today} / -"
            rate = f"{a.effective_rate:g} / {a.configured_rate:g}/s" if a.configured_rate and a.effective_rate else "unlimited"
            health = Text(a.health + (f" ({a.reason[:60]})" if a.reason else ""), style=HEALTH_STYLE.get(a.health, ""))
            table.add_row(a.name, a.provider, health, cap, rate, str(a.throttles_last_hour))
        return table

    def _outcomes_table(self, now: float) -> Table:
        counts, cut = snapshot.recent_outcomes(self.state, self.tenant, now=now)
        totals = snapshot.totals(self.state)
        title = "Last hour (events stream)" + (f" — first {snapshot.RECENT_MAX_ENTRIES:,} entries" if cut else "")
        table = Table("state", "last hour", title=title)
        for state, count in counts.most_common():
            table.add_row(state, str(count))
        if not counts:
            table.add_row("-", "0")
        table.caption = f"pending {totals.pending}, suppressed addresses {totals.suppressed}"
        return table


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def status(
    config: ConfigOption = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option("--interval", "-n", min=0.1, help="seconds between refreshes")] = 2.0,
    tenant: Annotated[str, typer.Option("--tenant", help="whose accounts and outcomes to show")] = "default",
    iterations: Annotated[int, typer.Option("--iterations", hidden=True, help="stop --watch after N refreshes")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of tables")] = False,
) -> None:
    """Queues (depth, oldest age), workers, accounts (health, usage, rate) and the last hour's outcomes."""
    view = StatusView(load_or_exit(config), tenant)
    try:
        if as_json:
            if watch:
                err.print("[red]error[/red] --json prints one snapshot: drop --watch (run it in a loop instead)")
                raise typer.Exit(2)
            print_json(view.data())
            return
        if not watch:
            console.print(view.render())
            return
        with Live(view.render(), console=console, refresh_per_second=4, screen=False) as live:
            done = 1
            while not iterations or done < iterations:
                time.sleep(interval)
                live.update(view.render())
                done += 1
    except redis.RedisError as exc:
        err.print(f"[red]error[/red] Redis unavailable: {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command()(status)
