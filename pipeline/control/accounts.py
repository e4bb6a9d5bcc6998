"""SMTP accounts of one tenant: add (verified before saving), list, change, remove, activate, pause, resume."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.config import AccountConfig, resolve_account
from pipeline.config.inbox import ImapSettings
from pipeline.config.oauth import AccountOAuth, AuthMethod, OAuthProvider
from pipeline.control import audit, grants
from pipeline.control.context import ControlContext
from pipeline.control.errors import Conflict, Invalid, NotFound, VerificationFailed
from pipeline.control.grants import STATUS_HINTS
from pipeline.control.schemas import AccountIn, AccountList, AccountOut, AccountPatch, ImapOut, OAuthOut, VerifyReport
from pipeline.control.scope import ACCOUNTS_MANAGE, TenantScope
from pipeline.control.tenants import data_key, lock_and_bump
from pipeline.control.verify_service import LiteralSecret
from pipeline.db.tables import Route, SmtpAccount
from pipeline.errors import MailpipeError
from pipeline.plugin_host.manager import preset_for
from pipeline.plugin_host.presets import Security

CONNECTION_FIELDS = frozenset({"provider", "host", "port", "security", "region", "username", "password", "auth_method"})
FILE_MANAGED = "is declared in the config file (managed by `mailpipe config apply`): change it there"
XOAUTH2 = AuthMethod.XOAUTH2.value
# An OAuth grant lives in the account's sealed secrets beside the passwords, every part under "oauth_".
OAUTH_KEYS = (
    "oauth_provider",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_refresh_token",
    "oauth_token_url",
    "oauth_scopes",
)


def _row(session: Session, scope: TenantScope, name: str, *, lock: bool = False) -> SmtpAccount:
    query = select(SmtpAccount).where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.name == name)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no account {name!r}")
    return row


def oauth_grant(secrets: dict[str, str]) -> dict[str, str]:
    """The OAuth part of an account's opened secrets (empty for a password account)."""
    return {k: v for k, v in secrets.items() if k in OAUTH_KEYS}


def oauth_config(grant: dict[str, str]) -> AccountOAuth | None:
    """The ``oauth = {…}`` of an account from its stored grant, secrets as literals; None without a grant."""
    if not grant.get("oauth_refresh_token"):
        return None
    secret = grant.get("oauth_client_secret")
    return AccountOAuth(
        provider=OAuthProvider(grant["oauth_provider"]),
        client_id=grant["oauth_client_id"],
        client_secret=LiteralSecret(secret) if secret else None,
        refresh_token=LiteralSecret(grant["oauth_refresh_token"]),
        token_url=grant.get("oauth_token_url") or None,  # type: ignore[arg-type]  # validated as HttpUrl
        scopes=grant["oauth_scopes"].split() if grant.get("oauth_scopes") else None,
    )


def _oauth_out(grant: dict[str, str]) -> OAuthOut | None:
    if not grant.get("oauth_refresh_token"):
        return None
    return OAuthOut(provider=grant["oauth_provider"], connected=True, scopes=grant.get("oauth_scopes", "").split())


def _out(ctx: ControlContext, session: Session, scope: TenantScope, row: SmtpAccount) -> AccountOut:
    """The account as the API shows it; an OAuth account's provider and scopes come from its sealed grant."""
    if row.auth_method != XOAUTH2 or not row.secret:
        return to_out(row)
    return to_out(row, oauth=_oauth_out(oauth_grant(_secrets(ctx, session, scope, row))))


def to_out(row: SmtpAccount, oauth: OAuthOut | None = None) -> AccountOut:
    imap = None
    if row.imap:
        imap = ImapOut(
            host=row.imap["host"],
            port=row.imap["port"],
            security=row.imap["security"],
            username=row.imap["username"],
            folder=row.imap.get("folder", "INBOX"),
            password_set=bool(row.imap.get("password_set")),
        )
    return AccountOut(
        name=row.name,
        provider=row.provider,
        host=row.host,
        port=row.port,
        security=row.security,
        region=row.region,
        username=row.username,
        password_set=row.password_set,
        auth_method=row.auth_method,
        from_email=row.from_email,
        from_name=row.from_name,
        reply_to=row.reply_to,
        envelope_from=row.envelope_from,
        limits=row.limits or {},
        description=row.description,
        imap=imap,
        oauth=oauth,
        reply_tracking=row.reply_tracking,
        default_for=list(row.default_for or []),
        status=row.status,
        status_reason=row.status_reason,
        status_hint=STATUS_HINTS.get(row.status_reason or ""),
        default=row.is_default,
        managed_by_file=row.managed_by_file,
        verified_at=row.verified_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def snapshot(row: SmtpAccount) -> dict[str, Any]:
    """What the audit log keeps of an account: every field but the secrets, which appear as ``password_set``."""
    data = to_out(row).model_dump(mode="json", exclude={"created_at", "updated_at", "verified_at"})
    return data


def _fields(data: AccountIn | AccountPatch, row: SmtpAccount | None) -> dict[str, Any]:
    """The account's fields after applying ``data`` to ``row`` (or to nothing, for a new one)."""
    names = (
        "provider",
        "host",
        "port",
        "security",
        "region",
        "username",
        "auth_method",
        "from_email",
        "from_name",
        "reply_to",
        "envelope_from",
        "description",
        "reply_tracking",
        "default_for",
    )
    out: dict[str, Any] = {n: getattr(row, n) for n in names} if row is not None else {}
    out["limits"] = dict(row.limits or {}) if row is not None else {}
    out["imap"] = dict(row.imap) if row is not None and row.imap else None
    for name in data.model_fields_set - {"password", "imap", "limits", "name"}:
        value = getattr(data, name)
        out[name] = value.value if hasattr(value, "value") else value
    if "limits" in data.model_fields_set:
        out["limits"] = data.limits.model_dump(exclude_none=True) if data.limits else {}
    if isinstance(data, AccountIn):
        out["provider"] = data.provider
    out["reply_tracking"] = bool(out.get("reply_tracking"))
    out["default_for"] = out.get("default_for") or []
    for required in ("provider", "from_email"):
        if not out.get(required):
            raise Invalid(f"{required}: may not be null", field=required)
    return out


def _account_config(
    name: str, fields: dict[str, Any], password: str | None, imap_password: str | None, grant: dict[str, str] | None = None
) -> AccountConfig:
    """The account as the sender and ``verify`` know it; tenant secrets as literals, never references."""
    oauth = oauth_config(grant or {})
    imap = None
    if fields.get("imap"):
        i = fields["imap"]
        imap = ImapSettings(
            host=i["host"],
            port=i["port"],
            security=Security(i["security"]),
            username=i["username"],
            password=LiteralSecret(imap_password or "-"),
            folders=[i.get("folder", "INBOX")],
        )
    try:
        return AccountConfig(
            name=name,
            provider=fields["provider"],
            host=fields.get("host"),
            port=fields.get("port"),
            security=fields.get("security"),
            region=fields.get("region"),
            username=fields.get("username"),
            password=LiteralSecret(password) if password else None,
            from_email=fields["from_email"],
            from_name=fields.get("from_name"),
            reply_to=fields.get("reply_to"),
            envelope_from=fields.get("envelope_from"),
            limits=fields.get("limits") or None,
            imap=imap,
            auth_method=AuthMethod.XOAUTH2 if oauth is not None else None,
            oauth=oauth,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "account"
        raise Invalid(f"{field}: {first['msg'].removeprefix('Value error, ')}", field=field) from None


def _check(ctx: ControlContext, account: AccountConfig, *, trusted: bool = False) -> tuple[str, int]:
    """Known provider, complete endpoint, allowed host and port (SMTP and IMAP); the effective host and port.

    ``trusted``: declared by the operator in the config file, so the SSRF guard (which is for tenant
    input) does not apply; the file may name a local relay.
    """
    if ctx.provider(account.provider) is None:
        raise Invalid(f"provider: unknown provider {account.provider!r}", field="provider")
    try:
        resolved = resolve_account(account.model_copy(update={"password": None}), preset_for(account, ctx.pm))
    except MailpipeError as exc:
        message = str(exc).split(": ", 1)[-1]
        field = "region" if "region" in message else "host"
        raise Invalid(f"{field}: {message}", field=field) from None
    if trusted:
        return resolved.host, resolved.port
    ctx.hosts.check_host(resolved.host, resolved.port)
    if account.imap is not None:
        port = account.imap.port or (993 if account.imap.security == Security.TLS else 143)
        ctx.hosts.check_host(account.imap.host, port, kind="imap", field_name="imap.host")
    return resolved.host, resolved.port


def _verify(
    ctx: ControlContext, scope: TenantScope, account: AccountConfig, host: str, port: int, send_test: str | None = None
) -> VerifyReport:
    report = ctx.verifier.check(account, host, port, tenant_id=scope.tenant_id, slug=scope.slug, send_test=send_test)
    return report


def _imap_stored(data: AccountIn | AccountPatch) -> dict[str, Any] | None:
    if data.imap is None:
        return None
    return {
        "host": data.imap.host,
        "port": data.imap.effective_port,
        "security": data.imap.security.value,
        "username": data.imap.username,
        "folder": data.imap.folder,
        "password_set": data.imap.password is not None,
    }


def list_accounts(ctx: ControlContext, scope: TenantScope) -> AccountList:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        rows = (
            session.execute(select(SmtpAccount).where(SmtpAccount.tenant_id == scope.tenant_id).order_by(SmtpAccount.name))
            .scalars()
            .all()
        )
        return AccountList(accounts=[_out(ctx, session, scope, r) for r in rows])


def get_account(ctx: ControlContext, scope: TenantScope, name: str) -> AccountOut:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        return _out(ctx, session, scope, _row(session, scope, name))


def create_account(
    ctx: ControlContext,
    scope: TenantScope,
    data: AccountIn,
    *,
    verify: bool = True,
    managed_by_file: bool = False,
    grant: dict[str, str] | None = None,
) -> tuple[AccountOut, VerifyReport | None]:
    """Checked, verified (unless ``verify`` is false), then saved; a failed verification saves nothing.

    With ``grant`` (``oauth_*`` keys, from the connect flow) the account logs in with XOAUTH2 and no password.
    """
    scope.require(ACCOUNTS_MANAGE)
    if grant is not None:
        _check_grant(grant)
        data = data.model_copy(update={"password": None, "auth_method": None})
    fields = _fields(data, None)
    fields["imap"] = _imap_stored(data)
    if grant is not None:
        fields["auth_method"] = XOAUTH2
    password = data.password.get_secret_value() if data.password else None
    imap_password = data.imap.password.get_secret_value() if data.imap and data.imap.password else None
    account = _account_config(data.name, fields, password, imap_password, grant)
    host, port = _check(ctx, account, trusted=managed_by_file)
    report = None
    if verify:  # a taken name is refused before the (slow) check; without one, the insert's unique key refuses it
        with ctx.transaction() as session:
            if session.execute(
                select(SmtpAccount.id).where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.name == data.name)
            ).first():
                raise Conflict(f"an account named {data.name!r} already exists", field="name")
        report = _verify(ctx, scope, account, host, port)
        if not report.ok:
            raise VerificationFailed(
                "name: the connection check failed; nothing was saved",
                field="name",
                extra={"verification": report.model_dump(mode="json")},
            )
        if grant is not None and report.rotated_refresh_token:
            grant = grant | {"oauth_refresh_token": report.rotated_refresh_token}
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        has_default = (
            session.execute(
                select(SmtpAccount.id).where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.is_default)
            ).first()
            is not None
        )
        row = SmtpAccount(
            tenant_id=scope.tenant_id,
            name=data.name,
            managed_by_file=managed_by_file,
            is_default=not has_default,
            verified_at=func.now() if report is not None else None,
            **{k: v for k, v in fields.items() if k != "imap"},
            imap=fields["imap"],
        )
        secrets = {k: v for k, v in (("password", password), ("imap_password", imap_password)) if v} | (grant or {})
        row.secret = data_key(ctx, session, scope).seal_secrets(data.name, secrets) if secrets else None
        row.password_set = password is not None
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"an account named {data.name!r} already exists", field="name") from None
        session.refresh(row)
        out = to_out(row, oauth=_oauth_out(grant or {}))
        after = snapshot(row) | ({"oauth": out.oauth.model_dump(mode="json")} if out.oauth else {})
        audit.record(session, scope, "account.create", data.name, after=after)
        return out, report


# The OAuth app that connects a preset's mailbox, and the preset a new connected account gets.
OAUTH_PRESETS = {OAuthProvider.GOOGLE: "gmail", OAuthProvider.MICROSOFT: "outlook"}


def oauth_connect_target(
    ctx: ControlContext,
    scope: TenantScope,
    name: str,
    *,
    provider: OAuthProvider | None,
    from_email: str | None,
    from_name: str | None = None,
) -> tuple[AccountOut | None, AccountIn | None]:
    """What the connect flow for ``name`` will connect: the existing account, or a new one to create.

    A new account needs ``provider`` (google or microsoft: its preset gives host, port and security) and
    ``from_email`` (the mailbox); it is checked now and created only by a successful callback (verified
    with the grant), so until then it does not exist. For an existing account a ``from_email`` must match.
    """
    scope.require(ACCOUNTS_MANAGE)
    try:
        existing = get_account(ctx, scope, name)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.managed_by_file:
            raise Conflict(f"account {name!r} {FILE_MANAGED}")
        if from_email is not None and from_email.strip().lower() != existing.from_email.lower():
            raise Conflict(f"from_email: account {name!r} exists with another mailbox", field="from_email")
        return existing, None
    if provider is None and from_email is None:
        raise NotFound(f"no account {name!r} (to create it with the connect flow, give provider and from_email)")
    preset = OAUTH_PRESETS.get(provider) if provider is not None else None
    if preset is None:
        raise Invalid(f"provider: a new account needs provider google or microsoft (no account {name!r} yet)", field="provider")
    if not from_email:
        raise Invalid(f"from_email: a new account needs the mailbox address (no account {name!r} yet)", field="from_email")
    body: dict[str, Any] = {"name": name, "provider": preset, "from_email": from_email}
    if from_name is not None:
        body["from_name"] = from_name
    try:
        data = AccountIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "account"
        raise Invalid(f"{field}: {first['msg'].removeprefix('Value error, ')}", field=field) from None
    fields = _fields(data, None) | {"auth_method": XOAUTH2}
    _check(ctx, _account_config(name, fields, None, None))
    return None, data


def _check_grant(grant: dict[str, str]) -> None:
    if set(grant) - set(OAUTH_KEYS) or not grant.get("oauth_refresh_token"):
        raise Invalid("oauth: a grant needs a refresh token and only oauth_* keys", field="oauth")


def _secrets(ctx: ControlContext, session: Session, scope: TenantScope, row: SmtpAccount) -> dict[str, str]:
    if not row.secret:
        return {}
    return data_key(ctx, session, scope).open_secrets(row.name, row.secret)


def update_account(
    ctx: ControlContext, scope: TenantScope, name: str, data: AccountPatch, *, verify: bool = True, from_file: bool = False
) -> tuple[AccountOut, VerifyReport | None]:
    """Only the fields sent change; a change to the connection is verified again before it is saved."""
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        row = _row(session, scope, name)
        if row.managed_by_file and not from_file:
            raise Conflict(f"account {name!r} {FILE_MANAGED}")
        stored = _secrets(ctx, session, scope, row)
        version = row.updated_at
    fields = _fields(data, row)
    if "imap" in data.model_fields_set:
        fields["imap"] = _imap_stored(data)
        if data.imap is not None and data.imap.password is None and stored.get("imap_password") and fields["imap"]:
            fields["imap"]["password_set"] = True
    password = stored.get("password")
    if "password" in data.model_fields_set:
        password = data.password.get_secret_value() if data.password else None
    imap_password = stored.get("imap_password")
    if "imap" in data.model_fields_set:
        imap_password = (
            (data.imap.password.get_secret_value() if data.imap and data.imap.password else imap_password) if data.imap else None
        )
    grant = oauth_grant(stored)
    if grant and ("auth_method" in data.model_fields_set or data.password is not None):
        grant = {}  # back to a password: the OAuth grant goes (connect again to return to OAuth)
        fields["auth_method"] = data.auth_method.value if data.auth_method else None
    account = _account_config(name, fields, password, imap_password, grant)
    host, port = _check(ctx, account, trusted=from_file)
    report = None
    if verify and CONNECTION_FIELDS & data.model_fields_set:
        report = _verify(ctx, scope, account, host, port)
        if not report.ok:
            raise VerificationFailed(
                "the connection check failed; nothing was changed",
                field="name",
                extra={"verification": report.model_dump(mode="json")},
            )
        if grant and report.rotated_refresh_token:
            grant = grant | {"oauth_refresh_token": report.rotated_refresh_token}
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        row = _row(session, scope, name, lock=True)
        if row.updated_at != version:
            raise Conflict(f"account {name!r} changed while this request was being checked; send it again")
        before = snapshot(row)
        for key, value in fields.items():
            setattr(row, key, value)
        secrets = {k: v for k, v in (("password", password), ("imap_password", imap_password)) if v} | grant
        if secrets != stored:
            row.secret = data_key(ctx, session, scope).seal_secrets(name, secrets) if secrets else None
        row.password_set = password is not None
        if report is not None:
            row.verified_at = func.now()
        row.updated_at = func.now()
        session.flush()
        session.refresh(row)
        after = snapshot(row)
        if "password" in data.model_fields_set and stored.get("password") != password:
            after["password"] = audit.CHANGED
        if stored.get("imap_password") != imap_password:
            after["imap_password"] = audit.CHANGED
        if oauth_grant(stored) and not grant:
            after["oauth"] = None
        audit.record(session, scope, "account.update", name, before=before, after=after)
        return _out(ctx, session, scope, row), report


def delete_account(ctx: ControlContext, scope: TenantScope, name: str, *, from_file: bool = False) -> None:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        row = _row(session, scope, name, lock=True)
        if row.managed_by_file and not from_file:
            raise Conflict(f"account {name!r} {FILE_MANAGED}")
        routes = session.execute(
            select(Route.position, Route.name, Route.accounts).where(Route.tenant_id == scope.tenant_id)
        ).all()
        using = [r.name or f"#{r.position}" for r in routes if name in r.accounts]
        if using:
            raise Conflict(f"account {name!r} is used by route(s) {', '.join(using)}: change the routes first")
        audit.record(session, scope, "account.delete", name, before=snapshot(row))
        session.delete(row)


def activate(ctx: ControlContext, scope: TenantScope, name: str) -> AccountOut:
    """ "Set as active": this account becomes the tenant's default, the previous one stops being it, atomically."""
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        row = _row(session, scope, name, lock=True)
        previous = session.execute(
            select(SmtpAccount.name).where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.is_default)
        ).scalar_one_or_none()
        session.execute(
            update(SmtpAccount).where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.is_default).values(is_default=False)
        )
        session.execute(update(SmtpAccount).where(SmtpAccount.id == row.id).values(is_default=True, updated_at=func.now()))
        audit.record(session, scope, "account.activate", name, before={"default": previous}, after={"default": name})
        session.refresh(row)
        return _out(ctx, session, scope, row)


def set_status(ctx: ControlContext, scope: TenantScope, name: str, status: str, reason: str | None = None) -> AccountOut:
    """``paused`` or ``active`` (resume, also out of ``auth_failed``)."""
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        row = _row(session, scope, name, lock=True)
        before = {"status": row.status}
        row.status, row.status_reason = status, reason
        row.updated_at = func.now()
        audit.record(
            session,
            scope,
            "account.pause" if status == "paused" else "account.resume",
            name,
            before=before,
            after={"status": status},
        )
        session.flush()
        session.refresh(row)
        return _out(ctx, session, scope, row)


def verify_stored(ctx: ControlContext, scope: TenantScope, name: str, send_test_to: str | None = None) -> VerifyReport:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        row = _row(session, scope, name)
        stored = _secrets(ctx, session, scope, row)
        fields = _fields(AccountPatch(), row)
    account = _account_config(name, fields, stored.get("password"), stored.get("imap_password"), oauth_grant(stored))
    host, port = _check(ctx, account)
    report = _verify(ctx, scope, account, host, port, send_test=send_test_to)
    if report.rotated_refresh_token:  # the check's refresh rotated the stored grant: keep the new token
        used = {stored["oauth_refresh_token"]} if stored.get("oauth_refresh_token") else set()
        grants.store_rotated_refresh_token(ctx, scope.slug, name, used, report.rotated_refresh_token)
    if report.ok:
        with ctx.transaction() as session:
            session.execute(
                update(SmtpAccount)
                .where(SmtpAccount.tenant_id == scope.tenant_id, SmtpAccount.name == name)
                .values(verified_at=func.now())
            )
    return report


def connect_oauth(
    ctx: ControlContext, scope: TenantScope, name: str, grant: dict[str, str], *, verify: bool = True
) -> tuple[AccountOut, VerifyReport | None]:
    """Switch the account to XOAUTH2 with ``grant`` (``oauth_*`` keys), after SMTP accepted it.

    The password goes (the account now logs in with tokens); an account paused as ``auth_failed`` is
    active again, since a fresh consent is exactly what it was waiting for.
    """
    scope.require(ACCOUNTS_MANAGE)
    _check_grant(grant)
    with ctx.transaction() as session:
        row = _row(session, scope, name)
        if row.managed_by_file:
            raise Conflict(f"account {name!r} {FILE_MANAGED}")
        stored = _secrets(ctx, session, scope, row)
        version = row.updated_at
    fields = _fields(AccountPatch(), row)
    fields["auth_method"] = XOAUTH2
    imap_password = stored.get("imap_password")
    account = _account_config(name, fields, None, imap_password, grant)
    host, port = _check(ctx, account)
    report = None
    if verify:
        report = _verify(ctx, scope, account, host, port)
        if not report.ok:
            raise VerificationFailed(
                "the connection check with the new OAuth grant failed; nothing was changed",
                field="oauth",
                extra={"verification": report.model_dump(mode="json")},
            )
        if report.rotated_refresh_token:  # the check's refresh rotated it: the first token is already dead
            grant = grant | {"oauth_refresh_token": report.rotated_refresh_token}
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        row = _row(session, scope, name, lock=True)
        if row.updated_at != version:
            raise Conflict(f"account {name!r} changed while it was being connected; connect it again")
        before = snapshot(row)
        secrets = ({"imap_password": imap_password} if imap_password else {}) | grant
        row.secret = data_key(ctx, session, scope).seal_secrets(name, secrets)
        row.auth_method = XOAUTH2
        row.password_set = False
        if row.status == "auth_failed":
            row.status, row.status_reason = "active", None
        if report is not None:
            row.verified_at = func.now()
        row.updated_at = func.now()
        session.flush()
        session.refresh(row)
        out = _out(ctx, session, scope, row)
        after = snapshot(row) | {"oauth": out.oauth.model_dump(mode="json") if out.oauth else None}
        if stored.get("password"):
            after["password"] = audit.CHANGED
        if oauth_grant(stored):
            after["refresh_token"] = audit.CHANGED
        audit.record(session, scope, "account.oauth_connect", name, before=before, after=after)
        return out, report
