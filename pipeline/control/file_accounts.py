"""`mailpipe config apply`: the TOML's `[[accounts]]`, `[[routes]]` and `[default]` as the `default` tenant's declared accounts.

Each declared account is upserted, marked ``managed_by_file`` (read-only over the API: 409), its
secrets resolved from their references and sealed like any other; a file-managed account no longer
in the file is removed (accounts added through the API are never touched). Only what differs is
written, so a second run changes nothing and adds nothing to the audit log; every change is audited
with the actor ``config-file``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from pipeline.config import AccountConfig, Config
from pipeline.control import accounts, routes, tenants
from pipeline.control.context import ControlContext
from pipeline.control.errors import Conflict, Invalid
from pipeline.control.schemas import AccountIn, AccountPatch, AuthMethod, ImapIn, RoutesIn, TenantIn
from pipeline.control.scope import Principal, TenantScope, resolve_scope
from pipeline.db.tables import SmtpAccount, Tenant
from pipeline.errors import ConfigError

FILE_TENANT = "default"
FILE_ACTOR = "config-file"
FILE_PRINCIPAL = Principal(actor=FILE_ACTOR, admin=True)
# What the registry stores of a declared account (pool_size, timeout, weight, … stay deployment settings).
STORED = ("provider", "host", "port", "security", "region", "username", "from_email", "from_name", "reply_to", "envelope_from")


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    routes_replaced: bool = False
    activated: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed or self.routes_replaced or self.activated)


def _secret(account: AccountConfig, index: int) -> str | None:
    if account.password is None:
        return None
    if error := account.password.check():
        raise ConfigError([f"accounts[{index}].password: {error}"])
    return account.password.resolve().get_secret_value()


def _declared(account: AccountConfig, index: int) -> dict[str, Any]:
    """The account as AccountIn fields, secrets resolved."""
    data: dict[str, Any] = {name: getattr(account, name) for name in STORED}
    data["security"] = account.security.value if account.security is not None else None
    data["limits"] = account.limits.model_dump(exclude_none=True) if account.limits else None
    method = account.auth_method.value.upper() if account.auth_method is not None else None
    data["auth_method"] = method if method in {m.value for m in AuthMethod} else None
    data["password"] = _secret(account, index)
    data["imap"] = None
    if account.imap is not None:
        imap_password = account.imap.password
        if imap_password is not None and (error := imap_password.check()):
            raise ConfigError([f"accounts[{index}].imap.password: {error}"])
        data["imap"] = {
            "host": account.imap.host,
            "port": account.imap.port,
            "security": account.imap.security.value,
            "username": account.imap.username,
            "password": imap_password.resolve().get_secret_value() if imap_password is not None else None,
            "folder": account.imap.folders[0],
        }
    return data


def _differences(ctx: ControlContext, scope: TenantScope, row: SmtpAccount, wanted: dict[str, Any]) -> dict[str, Any]:
    """The declared fields that differ from the stored account (secrets compared after opening them)."""
    stored = accounts.to_out(row).model_dump(mode="json")
    changed: dict[str, Any] = {}
    for name in (*STORED, "auth_method"):
        if stored[name] != wanted[name]:
            changed[name] = wanted[name]
    if (wanted["limits"] or {}) != (stored["limits"] or {}):
        changed["limits"] = wanted["limits"] or {}
    with ctx.transaction() as session:
        secrets = tenants.data_key(ctx, session, scope).open_secrets(row.name, row.secret) if row.secret else {}
    if wanted["password"] != secrets.get("password"):
        changed["password"] = wanted["password"]
    imap = wanted["imap"]
    stored_imap = stored["imap"]
    if imap is None and stored_imap is not None:
        changed["imap"] = None
    elif imap is not None:
        port = imap["port"] or ImapIn.model_validate(imap).effective_port
        same = stored_imap is not None and all(stored_imap[k] == v for k, v in {**imap, "port": port}.items() if k != "password")
        if not same or secrets.get("imap_password") != imap["password"]:
            changed["imap"] = imap
    return changed


def apply_file(ctx: ControlContext, config: Config) -> ApplyReport:
    """Make the `default` tenant's file-managed accounts and routes what the config file declares."""
    report = ApplyReport()
    with ctx.transaction() as session:
        exists = session.execute(select(Tenant.id).where(Tenant.slug == FILE_TENANT)).first() is not None
    if not exists:
        tenants.put_tenant(ctx, FILE_PRINCIPAL, FILE_TENANT, TenantIn(display_name="declared in the config file"))
    with ctx.transaction() as session:
        scope = resolve_scope(session, FILE_PRINCIPAL, FILE_TENANT)
        rows = {r.name: r for r in session.execute(select(SmtpAccount).where(SmtpAccount.tenant_id == scope.tenant_id)).scalars()}

    declared = {a.name: (index, a) for index, a in enumerate(config.accounts)}
    for name, (index, account) in declared.items():
        wanted = _declared(account, index)
        row = rows.get(name)
        try:
            if row is None:
                clean = {k: v for k, v in wanted.items() if v is not None}
                accounts.create_account(
                    ctx, scope, AccountIn.model_validate({"name": name, **clean}), verify=False, managed_by_file=True
                )
                report.created.append(name)
            elif not row.managed_by_file:
                raise Conflict(f"account {name!r} of tenant {FILE_TENANT!r} was added through the API: rename one of them")
            elif changes := _differences(ctx, scope, row, wanted):
                accounts.update_account(ctx, scope, name, AccountPatch.model_validate(changes), verify=False, from_file=True)
                report.updated.append(name)
            else:
                report.unchanged.append(name)
        except (Conflict, Invalid) as exc:
            raise ConfigError([f"accounts[{index}] ({name}): {exc.detail}"]) from None

    current = routes.get_routes(ctx, scope)
    wanted_routes = RoutesIn.model_validate({"routes": [r.model_dump(mode="json", exclude_none=True) for r in config.routes]})
    current_dump = [r.model_dump(mode="json") for r in current.routes]
    wanted_dump = [
        {
            "name": r.name,
            "match": r.match.model_dump(exclude_none=True),
            "accounts": r.accounts,
            "strategy": r.strategy.value,
            "tracking_domain": r.tracking_domain,
        }
        for r in wanted_routes.routes
    ]
    if current.routes and not current.managed_by_file and config.routes:
        raise ConfigError([f"routes: tenant {FILE_TENANT!r} has routes set through the API; clear them before declaring routes"])
    if current_dump != wanted_dump and (current.managed_by_file or config.routes):
        routes.replace_routes(ctx, scope, wanted_routes, from_file=True)
        report.routes_replaced = True

    for name, row in rows.items():
        if row.managed_by_file and name not in declared:
            accounts.delete_account(ctx, scope, name, from_file=True)
            report.removed.append(name)

    if config.default is not None:
        active = accounts.get_account(ctx, scope, config.default.account)
        if not active.default:
            accounts.activate(ctx, scope, config.default.account)
            report.activated = config.default.account
    return report
