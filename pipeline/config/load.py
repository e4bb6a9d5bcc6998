"""Reading the TOML file: parse, validate, cross-check, and point every problem at its line."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.config.schema import Config
from pipeline.config.validate import cross_check
from pipeline.errors import ConfigError

CONFIG_ENV = "MAILPIPE_CONFIG"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a config file; raise ConfigError listing every problem with its line."""
    path = Path(path or os.environ.get(CONFIG_ENV) or "mailpipe.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    raw.setdefault("base_dir", str(path.parent.resolve()))
    locate = _Locator(text)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            msg = error["msg"].removeprefix("Value error, ")
            problems.append(f"{path}:{locate.line(loc)}: {_dotted(loc)}: {msg}")
        problems += [f"{path}:{locate.line(loc)}: {_dotted(loc)}: {msg}" for loc, msg in raw_references(raw)]
        raise ConfigError(problems) from None
    problems = [f"{path}:{locate.line(loc)}: {_dotted(loc)}: {msg}" for loc, msg in cross_check(config)]
    if problems:
        raise ConfigError(problems)
    return config


def raw_references(raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Reference problems found in the raw TOML, so one run reports them beside schema errors."""
    accounts: list[Any] = raw["accounts"] if isinstance(raw.get("accounts"), list) else []
    names = {a.get("name") for a in accounts if isinstance(a, dict)}
    problems: list[tuple[tuple[Any, ...], str]] = []
    routes: list[Any] = raw["routes"] if isinstance(raw.get("routes"), list) else []
    for index, route in enumerate(routes):
        for name in route.get("accounts", []) if isinstance(route, dict) else []:
            if name not in names:
                problems.append((("routes", index, "accounts"), f"unknown account {name!r}"))
    default = raw.get("default")
    if isinstance(default, dict) and "account" in default and default["account"] not in names:
        problems.append((("default", "account"), f"unknown account {default['account']!r}"))
    return problems


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


class _Locator:
    """Finds the line of a key in TOML text: good enough to point an operator at it."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, loc: tuple[Any, ...]) -> int:
        if not loc:
            return 1
        section, rest = str(loc[0]), loc[1:]
        start, end = self._section_range(section, rest[0] if rest and isinstance(rest[0], int) else None)
        if rest and isinstance(rest[0], int):
            rest = rest[1:]
        key = next((str(p) for p in rest if not isinstance(p, int)), None)
        if start is None:
            return self._find_key(section, 0, len(self.lines)) or 1
        if key:
            found = self._find_key(key, start, end)
            if found:
                return found
        return start + 1

    def _section_range(self, section: str, index: int | None) -> tuple[int | None, int]:
        headers = [
            i
            for i, line in enumerate(self.lines)
            if line.strip() in (f"[{section}]", f"[[{section}]]") or line.strip().startswith(f"[{section}.")
        ]
        if not headers:
            return None, len(self.lines)
        pick = headers[index] if index is not None and index < len(headers) else headers[0]
        end = next(
            (i for i in range(pick + 1, len(self.lines)) if self.lines[i].lstrip().startswith("[")),
            len(self.lines),
        )
        return pick, end

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        for i in range(start, end):
            stripped = self.lines[i].lstrip()
            if stripped.startswith(f"{key} ") or stripped.startswith(f"{key}="):
                return i + 1
        return None
