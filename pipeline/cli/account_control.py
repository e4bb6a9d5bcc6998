"""`mailpipe accounts pause|resume|status`: operator control of sending accounts (state in Redis)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import redis
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.core import ConfigOption, load_or_exit
from pipeline.cli.output import ScriptFriendlyConsole, print_json
from pipeline.cli.tenant_accounts import TENANT_HELP, list_stored
from pipeline.cli.tenant_accounts import set_status as set_tenant_status
from pipeline.config import Config, ResolvedAccount, resolve_account
from pipeline.errors import MailpipeError, PluginError
from pipeline.limits.account_state import AccountState
from pipeline.limits.quota import read_usage
from pipeline.limits.ratelimit import configured_rate, effective_rate
from pipeline.limits.throttle import throttles_last_hour
from pipeline.plugin_host.manager import plugin_manager_for, preset_for

console = ScriptFriendlyConsole()
err = Console(stderr=True)
MAX_REASON_CHARS = 200
TenantOption = Annotated[str | None, typer.Option("--tenant", "-t", help=TENANT_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help="with --tenant: print JSON (for scripts)")]


@dataclass
class AccountStatus:
    name: str
    provider: str
    health: str
    sent_today: int
    daily_cap: int | None
    configured_rate: float | None
    effective_rate: float | None
    throttles_last_hour: int
    next_reset: float | None  # when an exhausted account can send again
    blocked_by: str


def resolved_accounts(config: Config) -> list[ResolvedAccount]:
    """Accounts with their presets applied, without resolving secrets (status needs none)."""
    try:
        pm = plugin_manager_for(config)
    except PluginError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out = []
    for account in config.accounts:
        try:
            out.append(resolve_account(account.model_copy(update={"password": None}), preset_for(account, pm)))
        except MailpipeError as exc:
            err.print(f"[red]error[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
    return out


def account_statuses(client: redis.Redis, config: Config, now: float | None = None) -> list[AccountStatus]:
    now = time.time() if now is None else now
    accounts = resolved_accounts(config)
    usage = read_usage(client, accounts, config.rate_limit, now)
    throttles = throttles_last_hour(client, [a.name for a in accounts], now)
    rows = []
    for account in accounts:
        u = usage[account.name]
        health = "paused" if u.paused else u.health
        rows.append(
            AccountStatus(
                name=account.name,
                provider=account.provider,
                health=f"{health} ({u.reason})" if u.reason and health != "up" else health,
                sent_today=u.sent_today,
                daily_cap=u.day_cap,
                configured_rate=configured_rate(account.limits),
                effective_rate=effective_rate(account.limits, u.factor),
                throttles_last_hour=throttles[account.name],
                next_reset=u.exhausted_until,
                blocked_by=u.exhausted_by,
            )
        )
    return rows


def _client(config: Config) -> redis.Redis:
    return redis.Redis.from_url(config.redis_url, socket_connect_timeout=2, socket_timeout=5)


def _known_or_exit(config: Config, name: str) -> None:
    if name not in {a.name for a in config.accounts}:
        known = ", ".join(a.name for a in config.accounts)
        err.print(f"[red]error[/red] no account named {name!r} (known: {known})", highlight=False)
        raise typer.Exit(2)


def _rate(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:.3g}/s"


def _when(at: float | None, timezone: str, now: float) -> str:
    if at is None:
        return ""
    local = datetime.fromtimestamp(at, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    left = max(0, int(at - now))
    return f"{local} (in {left // 3600}h{left % 3600 // 60:02d}m{left % 60:02d}s)"


def pause(
    name: Annotated[str, typer.Argument(help="account name")],
    reason: Annotated[str, typer.Option("--reason", help="why (shown in status)")] = "paused by operator",
    config: ConfigOption = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop sending through an account now; its mail goes to other accounts of its routes or waits."""
    if tenant is not None:
        return set_tenant_status(name, tenant, "paused", reason[:MAX_REASON_CHARS], config, as_json)
    loaded = load_or_exit(config)
    _known_or_exit(loaded, name)
    client = _client(loaded)
    try:
        AccountState(client).pause(name, reason.replace("\n", " ")[:MAX_REASON_CHARS])
    except redis.RedisError as exc:
        err.print(f"[red]error[/red] cannot reach Redis: {type(exc).__name__}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"paused {name}")


def resume(
    name: Annotated[str, typer.Argument(help="account name")],
    config: ConfigOption = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let a paused (or auth-failed, once fixed) account send again; waiting mail drains."""
    if tenant is not None:
        return set_tenant_status(name, tenant, "active", None, config, as_json)
    loaded = load_or_exit(config)
    _known_or_exit(loaded, name)
    client = _client(loaded)
    try:
        AccountState(client).resume(name)
    except redis.RedisError as exc:
        err.print(f"[red]error[/red] cannot reach Redis: {type(exc).__name__}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"resumed {name}")


def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")] = False,
    tenant: TenantOption = None,
) -> None:
    """Per account: sent today / daily cap, effective vs configured rate, throttles (1 h), health, next reset.

    With ``--tenant``: that tenant's accounts in the database, with their status (``auth_failed`` and why).
    """
    if tenant is not None:
        return list_stored(tenant, config, as_json)
    loaded = load_or_exit(config)
    now = time.time()
    try:
        rows = account_statuses(_client(loaded), loaded, now)
    except redis.RedisError as exc:
        err.print(f"[red]error[/red] cannot reach Redis: {type(exc).__name__}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    zone = loaded.rate_limit.timezone
    table = Table(
        "account",
        "provider",
        "health",
        "sent today",
        "rate (effective / configured)",
        "throttles 1h",
        "next reset",
        title=f"accounts · day in {zone}",
    )
    for r in rows:
        cap = f"{r.sent_today} / {r.daily_cap}" if r.daily_cap else f"{r.sent_today} / -"
        reset = _when(r.next_reset, zone, now)
        table.add_row(
            r.name,
            r.provider,
            r.health,
            cap,
            f"{_rate(r.effective_rate)} / {_rate(r.configured_rate)}",
            str(r.throttles_last_hour),
            f"{reset} {r.blocked_by}".strip(),
        )
    console.print(table)


def register(accounts_app: typer.Typer) -> None:
    accounts_app.command("pause")(pause)
    accounts_app.command("resume")(resume)
    accounts_app.command("status")(status)
