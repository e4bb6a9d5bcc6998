"""One tenant's sending setup as the stages see it: accounts (connection + identity), routes, defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.config import AccountConfig, ResolvedAccount, RouteConfig
from pipeline.registry.refs import account_ref


class AccountStatus:
    ACTIVE = "active"
    PAUSED = "paused"
    AUTH_FAILED = "auth_failed"


@dataclass(frozen=True)
class SendingAccount:
    """An account ready to send: `resolved` (its `name` is the account reference) and the TOML-shaped
    `config` the plugin hooks receive, whatever the source."""

    tenant: str
    name: str
    config: AccountConfig
    resolved: ResolvedAccount
    status: str = AccountStatus.ACTIVE
    default_for: tuple[str, ...] = ()
    reply_tracking: bool = False

    @property
    def ref(self) -> str:
        return account_ref(self.tenant, self.name)

    @property
    def usable(self) -> bool:
        return self.status == AccountStatus.ACTIVE

    def __repr__(self) -> str:
        return f"SendingAccount(ref={self.ref!r}, provider={self.config.provider!r}, status={self.status!r})"


@dataclass(frozen=True)
class Pool:
    """Where one message may go: account names of the tenant that owns them, and the route that chose them."""

    tenant: str
    names: tuple[str, ...]
    route: RouteConfig | None
    label: str

    @property
    def refs(self) -> list[str]:
        return [account_ref(self.tenant, n) for n in self.names]


@dataclass(frozen=True)
class TenantSnapshot:
    tenant: str
    version: int
    accounts: Mapping[str, SendingAccount] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
    active: str | None = None  # the tenant's default account ("Set as active")
    use_platform: bool = False  # the tenant chose the platform's sending over its own accounts

    @property
    def senders(self) -> dict[str, str]:
        """sender → account name, from each account's `default_for`."""
        return {sender: a.name for a in self.accounts.values() for sender in a.default_for}

    def find_route(self, campaign: str | None, list_name: str | None, sender: str | None) -> RouteConfig | None:
        return next((r for r in self.routes if r.match.matches(campaign, list_name, sender)), None)

    def own_pool(self, campaign: str | None, list_name: str | None, sender: str | None) -> Pool | None:
        """route (first match) → the sender's default account → the active account; None if none applies."""
        if self.use_platform:
            return None
        matched = self.find_route(campaign, list_name, sender)
        if matched is not None:
            return Pool(self.tenant, tuple(matched.accounts), matched, matched.label)
        if sender is not None and (name := self.senders.get(sender)) is not None:
            return Pool(self.tenant, (name,), None, f"sender={sender}")
        if self.active is not None and self.active in self.accounts:
            return Pool(self.tenant, (self.active,), None, "default")
        return None
