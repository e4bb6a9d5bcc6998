"""`mailpipe accounts add|edit|remove|activate|verify|pause|resume --tenant T`: a tenant's accounts in the database.

The same service layer as the API (``pipeline.control.accounts``), acting as an admin whose audit
actor is ``cli:<user>``. Without ``--tenant`` the `accounts` commands act on the accounts declared
in the config file instead (see ``pipeline.cli.accounts``). Passwords come from a file, stdin, an
environment variable or a hidden prompt, never from the command line, and are never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.cli.config_option import ConfigOption
from pipeline.cli.control_cmds import control_or_exit, scope_or_exit
from pipeline.control.errors import ControlError
from pipeline.control.schemas import AccountIn, AccountOut, AccountPatch, VerifyReport
from pipeline.plugin_host.presets import Limits

console = Console()
err = Console(stderr=True)

TENANT_HELP = "the tenant whose accounts (in the database) to act on; without it, the config file's accounts"
Tenant = Annotated[str, typer.Option("--tenant", "-t", help=TENANT_HELP)]
Name = Annotated[str, typer.Argument(help="account name")]
Json = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of text")]
PasswordFile = Annotated[
    Path | None, typer.Option("--password-file", help="read the SMTP password from this file ('-': from stdin)")
]
PasswordEnv = Annotated[
    str | None, typer.Option("--password-env", metavar="NAME", help="read the SMTP password from environment variable NAME")
]
PromptPassword = Annotated[bool, typer.Option("--prompt-password", help="ask for the SMTP password (not echoed)")]
NoVerify = Annotated[bool, typer.Option("--no-verify", help="save without checking the connection first")]
Provider = Annotated[str | None, typer.Option(help="provider preset (fills host, port, security, limits), e.g. sendgrid, smtp")]
Host = Annotated[str | None, typer.Option(help="SMTP host (default: the provider's)")]
Port = Annotated[int | None, typer.Option(help="SMTP port (default: the provider's)")]
SecurityOpt = Annotated[str | None, typer.Option("--security", help="starttls, tls or none")]
Region = Annotated[str | None, typer.Option(help="provider region, e.g. eu")]
Username = Annotated[str | None, typer.Option(help="SMTP username (default: the provider's convention)")]
FromEmail = Annotated[str | None, typer.Option("--from-email", help="sender address")]
FromName = Annotated[str | None, typer.Option("--from-name", help="sender display name")]
ReplyTo = Annotated[str | None, typer.Option("--reply-to")]
EnvelopeFrom = Annotated[str | None, typer.Option("--envelope-from", help="bounce (Return-Path) address")]
Description = Annotated[str | None, typer.Option()]
DefaultFor = Annotated[
    list[str] | None, typer.Option("--default-for", help="repeatable: a sender/agent this account is the default for")
]
LimitOpt = Annotated[
    list[str] | None, typer.Option("--limit", metavar="WINDOW=N", help="repeatable: per_second, per_minute, per_hour, per_day")
]


def fail(
    message: str, *, as_json: bool, code: int = 1, field: str | None = None, extra: dict[str, Any] | None = None
) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message, "field": field, **(extra or {})}))
    else:
        err.print(Text.assemble(("error ", "red"), message))
        verification = (extra or {}).get("verification")
        if verification:
            render_report(VerifyReport.model_validate(verification), to=err)
    raise typer.Exit(code)


def _refused(exc: ControlError, as_json: bool) -> NoReturn:
    fail(exc.detail, as_json=as_json, code=2 if exc.status == 422 else 1, field=exc.field, extra=exc.extra)


def read_password(file: Path | None, env: str | None, prompt: bool, *, as_json: bool) -> SecretStr | None:
    """The password from the one source given, or None when none is."""
    given = [name for name, on in (("--password-file", file), ("--password-env", env), ("--prompt-password", prompt)) if on]
    if len(given) > 1:
        fail(f"give one of {', '.join(given)}", as_json=as_json, code=2, field="password")
    if file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"--password-file: cannot read {file} ({exc.strerror})", as_json=as_json, code=2, field="password")
        value = text.rstrip("\r\n")
        if not value:
            fail(f"--password-file: {file} is empty", as_json=as_json, code=2, field="password")
        return SecretStr(value)
    if env is not None:
        value = os.environ.get(env, "")
        if not value:
            fail(f"--password-env: environment variable {env} is not set or empty", as_json=as_json, code=2, field="password")
        return SecretStr(value)
    if prompt:
        return SecretStr(typer.prompt("SMTP password", hide_input=True))
    return None


def _limits(items: list[str] | None, *, as_json: bool) -> Limits | None:
    if not items:
        return None
    values: dict[str, str] = {}
    for item in items:
        window, sep, number = item.partition("=")
        if not sep:
            fail(f"--limit: want WINDOW=N, got {item!r}", as_json=as_json, code=2, field="limits")
        values[window.strip()] = number.strip()
    try:
        return Limits.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"--limit {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", as_json=as_json, code=2, field="limits")


def _model(model: type[AccountIn] | type[AccountPatch], fields: dict[str, Any], *, as_json: bool) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "account"
        fail(f"{field}: {first['msg'].removeprefix('Value error, ')}", as_json=as_json, code=2, field=field)


def render_report(report: VerifyReport, to: Console = console) -> None:
    table = Table("step", "result", "time", "detail", title=f"{report.account} · {report.endpoint}")
    for step in report.steps:
        mark = Text("ok", style="green") if step.ok else Text("FAILED", style="bold red")
        took = "" if step.elapsed_ms is None else f"{step.elapsed_ms:.0f} ms"
        table.add_row(step.step, mark, took, Text(step.detail))
    to.print(table)
    for line in report.hints:
        to.print(Text.assemble(("hint: ", "yellow"), line))


def _print_account(verb: str, tenant: str, out: AccountOut, report: VerifyReport | None, as_json: bool) -> None:
    if as_json:
        data = out.model_dump(mode="json")
        data["tenant"] = tenant
        if report is not None:
            data["verification"] = report.model_dump(mode="json")
        print(json.dumps(data))
        return
    if report is not None:
        render_report(report)
    where = f"{out.host}:{out.port}" if out.host else f"{out.provider} preset"
    flags = ", ".join(f for f, on in (("active", out.default), (out.status, out.status != "active")) if on)
    console.print(
        f"[green]{verb}[/green] {out.name} in tenant {tenant}: {where}, from {out.from_email}" + (f" ({flags})" if flags else "")
    )


def add(
    name: Name,
    tenant: Tenant,
    from_email: FromEmail = None,
    provider: Provider = None,
    host: Host = None,
    port: Port = None,
    security: SecurityOpt = None,
    region: Region = None,
    username: Username = None,
    password_file: PasswordFile = None,
    password_env: PasswordEnv = None,
    prompt_password: PromptPassword = False,
    from_name: FromName = None,
    reply_to: ReplyTo = None,
    envelope_from: EnvelopeFrom = None,
    description: Description = None,
    default_for: DefaultFor = None,
    limit: LimitOpt = None,
    no_verify: NoVerify = False,
    config: ConfigOption = None,
    as_json: Json = False,
) -> None:
    """Add an SMTP account to a tenant; the connection is checked first and a failed check saves nothing.

    Without a password option the password is asked for (not echoed) when stdin is a terminal.
    """
    from pipeline.control import accounts

    if from_email is None:
        fail("--from-email is required", as_json=as_json, code=2, field="from_email")
    interactive = sys.stdin.isatty() and not (password_file or password_env)
    password = read_password(password_file, password_env, prompt_password or interactive, as_json=as_json)
    fields: dict[str, Any] = {
        "name": name,
        "provider": provider or "smtp",
        "host": host,
        "port": port,
        "security": security,
        "region": region,
        "username": username,
        "password": password,
        "from_email": from_email,
        "from_name": from_name,
        "reply_to": reply_to,
        "envelope_from": envelope_from,
        "description": description,
        "default_for": default_for or None,
        "limits": _limits(limit, as_json=as_json),
    }
    data = _model(AccountIn, {k: v for k, v in fields.items() if v is not None}, as_json=as_json)
    ctx = control_or_exit(config)
    try:
        out, report = accounts.create_account(ctx, scope_or_exit(ctx, tenant), data, verify=not no_verify)
    except ControlError as exc:
        _refused(exc, as_json)
    _print_account("added", tenant, out, report, as_json)


def edit(
    name: Name,
    tenant: Tenant,
    from_email: FromEmail = None,
    provider: Provider = None,
    host: Host = None,
    port: Port = None,
    security: SecurityOpt = None,
    region: Region = None,
    username: Username = None,
    password_file: PasswordFile = None,
    password_env: PasswordEnv = None,
    prompt_password: PromptPassword = False,
    from_name: FromName = None,
    reply_to: ReplyTo = None,
    envelope_from: EnvelopeFrom = None,
    description: Description = None,
    default_for: DefaultFor = None,
    limit: LimitOpt = None,
    no_verify: NoVerify = False,
    config: ConfigOption = None,
    as_json: Json = False,
) -> None:
    """Change some fields of a tenant's account; the others, and the stored password, stay.

    A change to the connection (provider, host, port, security, region, username, password) is
    checked again before it is saved.
    """
    from pipeline.control import accounts

    fields: dict[str, Any] = {
        "provider": provider,
        "host": host,
        "port": port,
        "security": security,
        "region": region,
        "username": username,
        "password": read_password(password_file, password_env, prompt_password, as_json=as_json),
        "from_email": from_email,
        "from_name": from_name,
        "reply_to": reply_to,
        "envelope_from": envelope_from,
        "description": description,
        "default_for": default_for or None,
        "limits": _limits(limit, as_json=as_json),
    }
    changes = {k: v for k, v in fields.items() if v is not None}
    if not changes:
        fail("nothing to change: give at least one option (see --help)", as_json=as_json, code=2)
    data = _model(AccountPatch, changes, as_json=as_json)
    ctx = control_or_exit(config)
    try:
        out, report = accounts.update_account(ctx, scope_or_exit(ctx, tenant), name, data, verify=not no_verify)
    except ControlError as exc:
        _refused(exc, as_json)
    _print_account("changed", tenant, out, report, as_json)


def remove(name: Name, tenant: Tenant, config: ConfigOption = None, as_json: Json = False) -> None:
    """Remove a tenant's account (refused while a route uses it, or when the config file declares it)."""
    from pipeline.control import accounts

    ctx = control_or_exit(config)
    try:
        accounts.delete_account(ctx, scope_or_exit(ctx, tenant), name)
    except ControlError as exc:
        _refused(exc, as_json)
    if as_json:
        print(json.dumps({"tenant": tenant, "name": name, "removed": True}))
    else:
        console.print(f"[green]removed[/green] {name} from tenant {tenant}")


def activate(name: Name, tenant: Tenant, config: ConfigOption = None, as_json: Json = False) -> None:
    """ "Set as active": the tenant's default account from now on (exactly one per tenant)."""
    from pipeline.control import accounts

    ctx = control_or_exit(config)
    try:
        out = accounts.activate(ctx, scope_or_exit(ctx, tenant), name)
    except ControlError as exc:
        _refused(exc, as_json)
    _print_account("activated", tenant, out, None, as_json)


def set_status(name: str, tenant: str, status: str, reason: str | None, config: Path | None, as_json: bool) -> None:
    """``accounts pause|resume --tenant T``."""
    from pipeline.control import accounts

    ctx = control_or_exit(config)
    try:
        out = accounts.set_status(ctx, scope_or_exit(ctx, tenant), name, status, reason)
    except ControlError as exc:
        _refused(exc, as_json)
    _print_account("paused" if status == "paused" else "resumed", tenant, out, None, as_json)


def verify_stored(name: str, tenant: str, send_test: str | None, config: Path | None, as_json: bool) -> None:
    """``accounts verify NAME --tenant T``: the stored account, step by step; exit 1 on failure."""
    from pipeline.control import accounts

    ctx = control_or_exit(config)
    try:
        report = accounts.verify_stored(ctx, scope_or_exit(ctx, tenant), name, send_test)
    except ControlError as exc:
        _refused(exc, as_json)
    if as_json:
        print(json.dumps({"tenant": tenant, **report.model_dump(mode="json")}))
    else:
        render_report(report)
        console.print(f"[green]ok[/green] {name} is ready to send" if report.ok else f"[red]failed[/red] {name}")
    raise typer.Exit(0 if report.ok else 1)


def list_stored(tenant: str, config: Path | None, as_json: bool) -> None:
    """``accounts list|status --tenant T`` on a deployment with a database: the tenant's accounts and their status.

    An account the provider's OAuth server refused for good shows ``auth_failed (reconnect_needed)`` with its hint.
    """
    from pipeline.control import accounts

    ctx = control_or_exit(config)
    try:
        found = accounts.list_accounts(ctx, scope_or_exit(ctx, tenant)).accounts
    except ControlError as exc:
        _refused(exc, as_json)
    if as_json:
        print(json.dumps([{"tenant": tenant, **a.model_dump(mode="json")} for a in found]))
        return
    table = Table("name", "provider", "auth", "from", "default", "status", "hint", title=f"accounts of tenant {tenant}")
    for a in found:
        status = f"{a.status} ({a.status_reason})" if a.status_reason else a.status
        table.add_row(
            a.name, a.provider, a.auth_method or "", a.from_email, "yes" if a.default else "", status, a.status_hint or ""
        )
    console.print(table)


def register(accounts_app: typer.Typer) -> None:
    accounts_app.command("add")(add)
    accounts_app.command("edit")(edit)
    accounts_app.command("remove")(remove)
    accounts_app.command("activate")(activate)
