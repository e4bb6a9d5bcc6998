"""Every tenant's reply-tracking mailboxes: accounts with `reply_tracking` and an IMAP mailbox.

`inbox watch` asks for this list every few seconds. One indexed query finds the tenants that have
such an account, with their versions; only a tenant whose version moved since the last call is
loaded again (through `DatabaseSource`, so the IMAP settings and the decrypted password come from
the same place as the rest of the account). With thousands of tenants a reconcile therefore costs
one query, not one per tenant.

An account's `status` (paused, auth failed) is about sending: replies to mail it sent earlier keep
arriving, so its mailbox stays watched. An XOAUTH2 account's mailbox carries its grant: the poller logs in
with the account's access token (a revoked grant waits, as the account does, for a reconnect).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.config.inbox import ImapSettings
from pipeline.config.resolve import ResolvedOAuth
from pipeline.db.tables import SmtpAccount, Tenant
from pipeline.registry.refs import account_ref
from pipeline.registry.sources import DatabaseSource


@dataclass(frozen=True)
class ReplyMailbox:
    tenant: str
    account: str
    settings: ImapSettings
    oauth: ResolvedOAuth | None = field(default=None, repr=False)  # XOAUTH2: the IMAP login uses its tokens

    @property
    def ref(self) -> str:
        return account_ref(self.tenant, self.account)


class ReplyMailboxes:
    """The registry's reply mailboxes, reloading only the tenants that changed since the last call."""

    def __init__(self, source: DatabaseSource) -> None:
        self.source = source
        self._held: dict[str, tuple[int, list[ReplyMailbox]]] = {}

    def load(self) -> list[ReplyMailbox]:
        query = (
            select(Tenant.slug, Tenant.version)
            .join(SmtpAccount, SmtpAccount.tenant_id == Tenant.id)
            .where(SmtpAccount.reply_tracking.is_(True))
            .distinct()
        )
        with Session(self.source.engine) as session:
            current = {slug: int(version) for slug, version in session.execute(query)}
        held: dict[str, tuple[int, list[ReplyMailbox]]] = {}
        for tenant, version in sorted(current.items()):
            previous = self._held.get(tenant)
            held[tenant] = previous if previous is not None and previous[0] == version else (version, self._tenant(tenant))
        self._held = held
        return [mailbox for _, found in held.values() for mailbox in found]

    def _tenant(self, tenant: str) -> list[ReplyMailbox]:
        snapshot = self.source.load(tenant)
        found = []
        for account in snapshot.accounts.values():
            imap = account.config.imap
            if not account.reply_tracking or imap is None:
                continue
            if imap.ca_file is None and self.source.trusted_ca_file:
                # The deployment's CA for tenants' own servers applies to their IMAP host as to their SMTP host.
                imap = imap.model_copy(update={"ca_file": self.source.trusted_ca_file})
            found.append(ReplyMailbox(tenant, account.name, imap, account.resolved.oauth))
        return sorted(found, key=lambda m: m.account)
