"""Checks across sections that pydantic cannot see one field at a time (references, secrets, links)."""

from __future__ import annotations

from typing import Any

from pipeline.config.schema import Config


def cross_check(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Problems pydantic cannot see alone: references between sections."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    names = [account.name for account in config.accounts]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append((("accounts", index, "name"), f"duplicate account name {name!r}"))
        seen.add(name)
    for index, route in enumerate(config.routes):
        for name in route.accounts:
            if name not in seen:
                problems.append((("routes", index, "accounts"), f"unknown account {name!r}"))
    problems += _serve_problems(config)
    if config.default.account not in seen:
        problems.append((("default", "account"), f"unknown account {config.default.account!r}"))
    for index, account in enumerate(config.accounts):
        if account.password is not None:
            error = account.password.check()
            if error:
                problems.append((("accounts", index, "password"), error))
        if account.imap is not None and (error := account.imap.password.check()):
            problems.append((("accounts", index, "imap"), f"imap password: {error}"))
        if account.limits and account.limits.per_second and account.limits.per_day:
            if account.limits.per_second > account.limits.per_day:
                problems.append((("accounts", index, "limits"), "per_second exceeds per_day"))
    if config.inbox is not None and (error := config.inbox.password.check()):
        problems.append((("inbox", "password"), f"imap password: {error}"))
    return problems


def _serve_problems(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Render signs unsubscribe and click links, so workers need [serve] secret as soon as links are on."""
    serve = config.serve
    problems: list[tuple[tuple[Any, ...], str]] = []
    links_on = serve.public_url is not None or bool(config.tracking.campaigns)
    if links_on and serve.secret is None:
        problems.append((("serve", "secret"), "secret is required when public_url or [tracking] campaigns are set"))
    elif serve.secret is not None and (error := serve.secret.check()):
        problems.append((("serve", "secret"), error))
    if config.tracking.campaigns and not serve.tracking_domain:
        problems.append((("tracking", "campaigns"), "click tracking needs [serve] tracking_domain (routes may override it)"))
    return problems
