"""Hints for the generic SMTP provider (the provider-neutral ones live in pipeline.plugin_host.hints)."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.plugin_host.hints import Hint, matching


def _known_provider(account: AccountConfig) -> str | None:
    """The provider whose preset host the account names, e.g. smtp.gmail.com → gmail."""
    from pipeline.plugin_host.manager import presets, provider_family

    host = (account.host or "").lower()
    for preset in presets().values():
        if preset.host and preset.name != account.provider and preset.host.lower() == host:
            return provider_family(preset.name)
    return None


def hints_for(account: AccountConfig, error: str) -> list[str]:
    known = _known_provider(account)
    if known is None:
        return []
    row = Hint(
        f'{{host}} is {known}\'s server: set provider = "{known}" to get its settings, limits and '
        "troubleshooting (`mailpipe providers " + known + "`)."
    )
    return matching([row], account, error)
