"""Every Redis Lua script of mailpipe, loaded one way from `pipeline/state/lua/<name>.lua`.

A script file starts with a comment header that documents its calling convention, and the header
is checked on every call:

    -- KEYS[1] the ledger hash           one line per fixed position
    -- KEYS[3..] the scope counters      a variadic tail: position 3 and any after it
    -- ARGV: none                        neither keys nor arguments

Two things are expanded when a file is loaded, so no script is assembled from Python strings:
- `--#include <fragment>` (alone on a line) inserts `lua/lib/<fragment>.lua`. A fragment defines
  local functions with a documented contract (its arguments and what it reads); it never relies
  on variables of the script that includes it.
- `${NAME}` is replaced by the constant the loading module passes (`load(name, NAME=value)`), so
  a number such as the back-off floor is defined once, in Python. A missing or an unused
  constant is an error at load time, not a silently different script.

A loaded script is called one way: `script.bind(keys, args)` checks the counts against the header
and gives a `ScriptCall`, which a runner sends as EVALSHA (reloading the script when Redis answers
NOSCRIPT after a restart or SCRIPT FLUSH): `run` / `run_async` (one call on a plain client),
`ScriptPipeline.call` (among other commands of a pipeline) or `ScriptBatcher.run` (async calls of
one event loop tick, coalesced into one round trip).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

ScriptArg = str | int | float | bytes

_INCLUDE = re.compile(r"^--#include\s+([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_CONSTANT = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
_POSITION = re.compile(r"^--\s*(KEYS|ARGV)\[(\d+)(\.\.)?\]", re.MULTILINE)
_NONE = re.compile(r"^--\s*(KEYS|ARGV):\s*none\b", re.MULTILINE)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScriptDefinitionError(ValueError):
    """A script file (or its header, include or constants) is not well formed."""


@dataclass(frozen=True)
class Arity:
    """How many KEYS or ARGV a script takes: exactly `fixed`, or at least that many when `variadic`."""

    fixed: int
    variadic: bool

    def accepts(self, count: int) -> bool:
        return count >= self.fixed if self.variadic else count == self.fixed

    def __str__(self) -> str:
        return f"at least {self.fixed}" if self.variadic else f"exactly {self.fixed}"


@dataclass(frozen=True)
class ScriptCall:
    """One checked invocation of a script, ready for a runner."""

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[ScriptArg, ...]

    def evalsha_args(self) -> tuple[ScriptArg, ...]:
        return (self.script.sha, len(self.keys), *self.keys, *self.args)


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str  # after includes and constants: exactly what Redis runs
    sha: str
    keys: Arity
    args: Arity

    @classmethod
    def from_source(cls, name: str, text: str, **constants: ScriptArg) -> LuaScript:
        """Build a script from text in the file format (tests use this for throwaway scripts)."""
        keys, args = _arity(name, text, "KEYS"), _arity(name, text, "ARGV")
        source = _substitute(name, _expand_includes(name, text), constants)
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest(), keys, args)

    def bind(self, keys: Sequence[str], args: Sequence[ScriptArg]) -> ScriptCall:
        if not self.keys.accepts(len(keys)):
            raise TypeError(f"script {self.name} takes {self.keys} KEYS, got {len(keys)}")
        if not self.args.accepts(len(args)):
            raise TypeError(f"script {self.name} takes {self.args} ARGV, got {len(args)}")
        return ScriptCall(self, tuple(keys), tuple(args))


def load(name: str, **constants: ScriptArg) -> LuaScript:
    """The script `lua/<name>.lua`, with its includes expanded and `${NAME}` constants filled in."""
    return LuaScript.from_source(name, _read(name), **constants)


def run(client: redis.Redis, call: ScriptCall) -> Any:
    """Run one script call on a plain client: one round trip (two after Redis forgot the script)."""
    try:
        return client.evalsha(*call.evalsha_args())  # type: ignore[arg-type]
    except NoScriptError:
        client.script_load(call.script.source)
        return client.evalsha(*call.evalsha_args())  # type: ignore[arg-type]


async def run_async(client: aioredis.Redis, call: ScriptCall) -> Any:
    """`run` for an asyncio client (a call on its own; calls of a busy event loop go through ScriptBatcher)."""
    try:
        return await client.evalsha(*call.evalsha_args())  # type: ignore[arg-type]
    except NoScriptError:
        await client.script_load(call.script.source)
        return await client.evalsha(*call.evalsha_args())  # type: ignore[arg-type]


@functools.cache
def _read(name: str, folder: str = "") -> str:
    if not _NAME.match(name):
        raise ScriptDefinitionError(f"script name {name!r} must be lower_snake_case")
    path = resources.files("pipeline.state").joinpath("lua", *([folder] if folder else []), f"{name}.lua")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptDefinitionError(f"no Lua script {name!r} at {path}") from None


def _expand_includes(name: str, text: str, seen: tuple[str, ...] = ()) -> str:
    def include(match: re.Match[str]) -> str:
        fragment = match.group(1)
        if fragment in seen:
            raise ScriptDefinitionError(f"script {name}: include cycle through {fragment!r}")
        return _expand_includes(name, _read(fragment, "lib"), (*seen, fragment))

    return _INCLUDE.sub(include, text)


def _substitute(name: str, text: str, constants: dict[str, ScriptArg]) -> str:
    wanted = set(_CONSTANT.findall(text))
    missing, unused = wanted - constants.keys(), constants.keys() - wanted
    if missing:
        raise ScriptDefinitionError(f"script {name}: no value for constant(s) {', '.join(sorted(missing))}")
    if unused:
        raise ScriptDefinitionError(f"script {name}: constant(s) {', '.join(sorted(unused))} not used by the script")
    return _CONSTANT.sub(lambda m: _lua_literal(name, m.group(1), constants[m.group(1)]), text)


def _lua_literal(name: str, constant: str, value: ScriptArg) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScriptDefinitionError(f"script {name}: constant {constant} must be a number, got {value!r}")
    return repr(value)


def _arity(name: str, text: str, kind: str) -> Arity:
    header = text.split("\n\n", 1)[0]  # the documentation block ends at the first blank line
    positions = [(int(index), bool(tail)) for k, index, tail in _POSITION.findall(header) if k == kind]
    declared_none = any(k == kind for k in _NONE.findall(header))
    if declared_none and positions:
        raise ScriptDefinitionError(f"script {name}: {kind} declared both none and by position")
    if declared_none:
        return Arity(0, variadic=False)
    if not positions:
        raise ScriptDefinitionError(f"script {name}: header documents no {kind} (write '-- {kind}: none' if it takes none)")
    indices = [index for index, _ in positions]
    if indices != list(range(1, len(indices) + 1)):
        raise ScriptDefinitionError(f"script {name}: {kind} positions {indices} are not 1, 2, 3, … in order")
    if any(tail for _, tail in positions[:-1]):
        raise ScriptDefinitionError(f"script {name}: only the last {kind} position may be variadic (n..)")
    last_variadic = positions[-1][1]
    return Arity(len(indices) - 1 if last_variadic else len(indices), variadic=last_variadic)
