"""A non-transactional pipeline whose Lua script calls go out as plain EVALSHA.

redis-py sends `SCRIPT EXISTS` before every pipeline that holds registered `Script` objects: one
more round trip for each batch of status writes. Here a script is assumed loaded; a call Redis
refuses with NOSCRIPT (after a restart or SCRIPT FLUSH) did not run, and is run again on its own
through the `Script`, which loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


class ScriptPipeline:
    def __init__(self, client: redis.Redis) -> None:
        self.pipe = client.pipeline(transaction=False)  # queue plain commands on it directly
        self._calls: dict[int, tuple[Script, Sequence[Any], Sequence[Any]]] = {}

    def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self._calls[len(self.pipe)] = (script, keys, args)
        self.pipe.evalsha(script.sha, len(keys), *keys, *args)

    def execute(self) -> list[Any]:
        """Every command's result, in order; the first error raised after all have run."""
        results = list(self.pipe.execute(raise_on_error=False))
        for index, (script, keys, args) in self._calls.items():
            if isinstance(results[index], NoScriptError):
                results[index] = script(keys=keys, args=args)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results
