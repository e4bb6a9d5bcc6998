"""Checks across sections that pydantic cannot see one field at a time (references, secrets, links)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pipeline.config.oauth import AuthMethod
from pipeline.config.schema import Config
from pipeline.config.serve import WEBHOOK_KEYS, WebhookKeys
from pipeline.secrets import SecretRef

SNS_TOPIC_ARN = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$")


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
    problems += webhook_problems(config.webhooks.providers, Path(config.base_dir))
    problems += _declared_problems(config)
    if config.default is not None and config.default.account not in seen:
        problems.append((("default", "account"), f"unknown account {config.default.account!r}"))
    for index, account in enumerate(config.accounts):
        if account.password is not None:
            error = account.password.check()
            if error:
                problems.append((("accounts", index, "password"), error))
        if account.imap is not None:
            if account.imap.password is None:
                if account.auth_method != AuthMethod.XOAUTH2:
                    problems.append((("accounts", index, "imap", "password"), 'required (unless auth_method = "xoauth2")'))
            elif error := account.imap.password.check():
                problems.append((("accounts", index, "imap"), f"imap password: {error}"))
        limits = account.limits
        if limits and limits.per_second and limits.per_day and limits.per_second > limits.per_day:
            problems.append((("accounts", index, "limits"), "per_second exceeds per_day"))
    if config.inbox is not None:
        if config.inbox.password is None:
            problems.append((("inbox", "password"), "required"))
        elif error := config.inbox.password.check():
            problems.append((("inbox", "password"), f"imap password: {error}"))
    return problems


def _declared_problems(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Without a database the file is the only source of accounts, so it must declare them and a default."""
    if config.database.resolved_url() is not None:
        return []
    why = "is required when no database is configured ([database] url or MAILPIPE_DATABASE_URL)"
    problems: list[tuple[tuple[Any, ...], str]] = []
    if not config.accounts:
        problems.append((("accounts",), f"at least one [[accounts]] table {why}"))
    if config.default is None:
        problems.append((("default",), f'[default] account = "<name>" {why}'))
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


def webhook_problems(providers: dict[str, dict[str, Any]], base_dir: Path) -> list[tuple[tuple[Any, ...], str]]:
    """Each built-in provider's ``[webhooks.<provider>]`` keys: a typo or a missing key refuses every request."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for provider, table in providers.items():
        spec = WEBHOOK_KEYS.get(provider)
        if spec is None:
            close = difflib.get_close_matches(provider, WEBHOOK_KEYS, n=1, cutoff=0.75)
            if close:  # other names may belong to a third-party plugin
                problems.append((("webhooks", provider), f"unknown provider {provider!r}; did you mean {close[0]!r}?"))
            continue
        problems += _provider_problems(provider, table, spec, base_dir)
    return problems


def _provider_problems(
    provider: str, table: dict[str, Any], spec: WebhookKeys, base_dir: Path
) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    valid = ", ".join(spec.keys)
    for key, value in table.items():
        if key not in spec.keys:
            close = difflib.get_close_matches(key, spec.keys, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((("webhooks", provider, key), f"unknown key {key!r}{hint} (valid keys: {valid})"))
        elif key in spec.secrets:
            if not isinstance(value, str) or not value:
                problems.append((("webhooks", provider, key), "must be a non-empty text (or env:NAME / file:PATH)"))
            elif value.startswith(("env:", "file:")) and (error := SecretRef(value).check()):
                problems.append((("webhooks", provider, key), error))
        else:
            problems += [(("webhooks", provider, key), error) for error in _setting_errors(key, value, base_dir)]
    present = [group for group in spec.needs if all(table.get(key) for key in group)]
    if spec.needs and not present:
        wanted = " or ".join(" and ".join(group) for group in spec.needs)
        problems.append((("webhooks", provider), f"needs {wanted}; without it every request is refused (401)"))
    return problems


def _setting_errors(key: str, value: Any, base_dir: Path) -> list[str]:
    if key == "topic_arns":
        if not isinstance(value, list) or not value:
            return ["must be a list of SNS topic ARNs (arn:aws:sns:<region>:<account>:<topic>)"]
        wrong = [item for item in value if not (isinstance(item, str) and SNS_TOPIC_ARN.match(item))]
        return [f"{item!r} is not an SNS topic ARN" for item in wrong]
    if key == "confirm_subscriptions":
        return [] if isinstance(value, bool) else ["must be true or false"]
    if key == "certificates_dir":
        if not isinstance(value, str) or not value:
            return ["must be a directory path"]
        path = base_dir / value  # a relative directory is relative to the config file
        return [] if path.is_dir() else [f"{path} is not a directory"]
    return []
