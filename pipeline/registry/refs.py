"""Account references carried on stage messages: which tenant's account, by name.

A reference is one string so that every per-account structure (SMTP pools, limiter keys, ledger
entries, metrics) keys on it unchanged. The `default` tenant's accounts keep their bare name, which
is what the TOML-declared deployments have always used; other tenants' are `tenant/name`. Neither
part may contain a slash (both are `[A-Za-z0-9_.-]`), so the split is unambiguous.
"""

from __future__ import annotations

DEFAULT_TENANT = "default"
SEPARATOR = "/"


def account_ref(tenant: str, name: str) -> str:
    return name if tenant == DEFAULT_TENANT else f"{tenant}{SEPARATOR}{name}"


def split_ref(ref: str) -> tuple[str, str]:
    """(tenant, name) of a reference."""
    tenant, separator, name = ref.partition(SEPARATOR)
    return (tenant, name) if separator else (DEFAULT_TENANT, ref)
