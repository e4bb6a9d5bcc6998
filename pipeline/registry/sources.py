"""Where tenant snapshots come from: the TOML's declared accounts, or the PostgreSQL registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy
from sqlalchemy import BigInteger, Engine, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from pipeline.config import AccountConfig, Config, RouteConfig, resolve_account
from pipeline.config.inbox import ImapSettings
from pipeline.config.oauth import AuthMethod
from pipeline.plugin_host.manager import preset_for
from pipeline.plugin_host.presets import Limits, Security
from pipeline.registry.refs import DEFAULT_TENANT, account_ref
from pipeline.registry.snapshot import AccountStatus, SendingAccount, TenantSnapshot

if TYPE_CHECKING:  # the database's modules load with the first DatabaseSource query, not with the TOML deployment's
    from pipeline.control.crypto import Keyring
    from pipeline.db.tables import Route, SmtpAccount, Tenant, TenantDataKey

SLUGS = ARRAY(String)
CHANGE_MARGIN = dt.timedelta(seconds=30)
IDS = ARRAY(BigInteger)


class SnapshotSource(Protocol):
    def load(self, tenant: str) -> TenantSnapshot: ...

    def load_many(self, tenants: Iterable[str]) -> list[TenantSnapshot]:
        """Several tenants at once (a stage batch spans many): one round of queries, not one per tenant."""
        ...

    def versions(self, tenants: Iterable[str]) -> dict[str, int]:
        """Current version of each tenant asked about (0 for a tenant that does not exist)."""
        ...


def sending_account(tenant: str, config: AccountConfig, pm: pluggy.PluginManager, **extra: Any) -> SendingAccount:
    resolved = resolve_account(config, preset_for(config, pm))
    resolved = resolved.model_copy(update={"name": account_ref(tenant, config.name)})
    return SendingAccount(tenant=tenant, name=config.name, config=config, resolved=resolved, **extra)


class FileSource:
    """The deployment without a database: the TOML's accounts are the `default` tenant's, forever at version 1."""

    def __init__(self, config: Config, pm: pluggy.PluginManager) -> None:
        accounts = {a.name: sending_account(DEFAULT_TENANT, a, pm) for a in config.accounts}
        active = config.default.account if config.default is not None else None
        self.snapshot = TenantSnapshot(DEFAULT_TENANT, 1, accounts, tuple(config.routes), active)

    def load(self, tenant: str) -> TenantSnapshot:
        return self.snapshot if tenant == DEFAULT_TENANT else TenantSnapshot(tenant, 0)

    def load_many(self, tenants: Iterable[str]) -> list[TenantSnapshot]:
        return [self.load(t) for t in tenants]

    def versions(self, tenants: Iterable[str]) -> dict[str, int]:
        return {t: (1 if t == DEFAULT_TENANT else 0) for t in tenants}


class DatabaseSource:
    """Tenants' accounts from PostgreSQL, credentials decrypted with the tenant's data key."""

    def __init__(self, engine: Engine, keyring: Keyring, pm: pluggy.PluginManager, *, trusted_ca_file: str | None = None) -> None:
        self.engine = engine
        self.keyring = keyring
        self.pm = pm
        self.trusted_ca_file = trusted_ca_file

    def close(self) -> None:
        self.engine.dispose()

    def versions(self, tenants: Iterable[str]) -> dict[str, int]:
        from sqlalchemy.orm import Session

        from pipeline.db.tables import Tenant

        wanted = list(tenants)
        found: dict[str, int] = dict.fromkeys(wanted, 0)
        with Session(self.engine) as session:
            # One array parameter, however many tenants are cached (an IN list would bind each slug).
            query = select(Tenant.slug, Tenant.version).where(Tenant.slug == any_(bindparam("slugs", wanted, type_=SLUGS)))
            for slug, version in session.execute(query):
                found[slug] = int(version)
        return found

    def changed_since(self, mark: dt.datetime | None) -> tuple[dict[str, int], dt.datetime]:
        """Versions of the tenants changed since `mark` (minus a margin), and the database's clock now
        (with `mark` None: only the clock).

        `updated_at` is the changing transaction's start: one still running at `mark` commits later
        with an older time — the margin covers such transactions up to CHANGE_MARGIN long (the full
        check every `full_every` seconds covers longer ones, and deleted tenants).
        """
        from sqlalchemy.orm import Session

        from pipeline.db.tables import Tenant

        with Session(self.engine) as session:
            now = session.execute(select(func.now())).scalar_one()
            if mark is None:
                return {}, now
            query = select(Tenant.slug, Tenant.version).where(Tenant.updated_at > mark - CHANGE_MARGIN)
            return {slug: int(version) for slug, version in session.execute(query)}, now

    def load(self, tenant: str) -> TenantSnapshot:
        return self.load_many([tenant])[0]

    def load_many(self, tenants: Iterable[str]) -> list[TenantSnapshot]:
        from sqlalchemy.orm import Session

        from pipeline.db.tables import Route, SmtpAccount, Tenant, TenantDataKey

        wanted = list(dict.fromkeys(tenants))
        if not wanted:
            return []
        slugs = bindparam("slugs", wanted, type_=SLUGS)
        with Session(self.engine) as session:
            rows = {t.slug: t for t in session.scalars(select(Tenant).where(Tenant.slug == any_(slugs)))}
            ids = [t.id for t in rows.values()]
            if not ids:
                return [TenantSnapshot(slug, 0) for slug in wanted]
            in_ids = any_(bindparam("ids", ids, type_=IDS))
            keys = {k.tenant_id: k for k in session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == in_ids))}
            accounts: dict[int, list[SmtpAccount]] = {}
            for account in session.scalars(select(SmtpAccount).where(SmtpAccount.tenant_id == in_ids)):
                accounts.setdefault(account.tenant_id, []).append(account)
            routes: dict[int, list[Route]] = {}
            query = select(Route).where(Route.tenant_id == in_ids).order_by(Route.tenant_id, Route.position)
            for route in session.scalars(query):
                routes.setdefault(route.tenant_id, []).append(route)
            out = []
            for slug in wanted:
                row = rows.get(slug)
                if row is None:
                    out.append(TenantSnapshot(slug, 0))
                else:
                    out.append(self._snapshot(row, keys.get(row.id), accounts.get(row.id, []), routes.get(row.id, [])))
            return out

    def _snapshot(
        self, row: Tenant, key_row: TenantDataKey | None, account_rows: list[SmtpAccount], route_rows: list[Route]
    ) -> TenantSnapshot:
        tenant = row.slug
        data_key = self.keyring.unwrap(row.id, key_row.master_key_id, key_row.wrapped_key) if key_row else None
        accounts: dict[str, SendingAccount] = {}
        active = None
        for account in account_rows:
            secrets = data_key.open_secrets(account.name, account.secret) if data_key and account.secret else {}
            accounts[account.name] = sending_account(
                tenant,
                self._config(account, secrets),
                self.pm,
                status=account.status,
                default_for=tuple(account.default_for or ()),
                reply_tracking=account.reply_tracking,
            )
            if account.is_default:
                active = account.name
        routes = tuple(
            RouteConfig.model_validate(
                {"name": r.name, "match": r.match, "accounts": r.accounts, "strategy": r.strategy}
                | ({"tracking_domain": r.tracking_domain} if r.tracking_domain else {})
            )
            for r in route_rows
        )
        use_platform = bool(getattr(row, "use_platform", False))
        return TenantSnapshot(tenant, int(row.version), accounts, routes, active, use_platform)

    def _config(self, row: SmtpAccount, secrets: dict[str, str]) -> AccountConfig:
        from pipeline.control.accounts import oauth_config, oauth_grant  # the control plane's service layer
        from pipeline.control.verify_service import LiteralSecret

        imap = None
        if row.imap:
            imap = ImapSettings(
                host=row.imap["host"],
                port=row.imap["port"],
                security=Security(row.imap["security"]),
                username=row.imap["username"],
                password=LiteralSecret(secrets.get("imap_password") or "-"),
                folders=[row.imap.get("folder", "INBOX")],
            )
        password = secrets.get("password")
        oauth = oauth_config(oauth_grant(secrets))  # a tenant's XOAUTH2 account (connect flow)
        return AccountConfig(
            name=row.name,
            provider=row.provider,
            host=row.host,
            port=row.port,
            security=Security(row.security) if row.security else None,
            region=row.region,
            username=row.username,
            password=LiteralSecret(password) if password else None,
            from_email=row.from_email,
            from_name=row.from_name,
            reply_to=row.reply_to,
            envelope_from=row.envelope_from,
            limits=Limits.model_validate(row.limits) if row.limits else None,
            imap=imap,
            ca_file=self.trusted_ca_file,
            auth_method=AuthMethod.XOAUTH2 if oauth is not None else None,
            oauth=oauth,
        )


def paused_status(status: str) -> bool:
    return status != AccountStatus.ACTIVE
