"""A pipeline whose Lua script calls go out as plain EVALSHA, among the pipeline's other commands.

redis-py sends `SCRIPT EXISTS` before every pipeline that holds registered `Script` objects: one
more round trip for each batch of status writes. Here a script is assumed loaded; a call Redis
refuses with NOSCRIPT (after a restart or SCRIPT FLUSH) did not run, and is run again on its own
(`lua_scripts.run` loads it). With `transaction=True` the commands run as one MULTI/EXEC; a call
refused with NOSCRIPT is then re-run right after it, outside the transaction.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import NoScriptError

from pipeline.state.lua_scripts import ScriptCall, run


class ScriptPipeline:
    def __init__(self, client: redis.Redis, *, transaction: bool = False) -> None:
        self.client = client
        self.pipe = client.pipeline(transaction=transaction)  # queue plain commands on it directly
        self._calls: dict[int, ScriptCall] = {}

    def call(self, call: ScriptCall) -> None:
        self._calls[len(self.pipe)] = call
        self.pipe.evalsha(*call.evalsha_args())  # type: ignore[arg-type]

    def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Every command's result, in order; the first error raised after all have run (or, with
        `raise_on_error=False`, each command's error left in its place)."""
        results = list(self.pipe.execute(raise_on_error=False))
        for index, call in self._calls.items():
            if isinstance(results[index], NoScriptError):
                try:
                    results[index] = run(self.client, call)
                except redis.ResponseError as exc:
                    if raise_on_error:
                        raise
                    results[index] = exc
        for result in results:
            if raise_on_error and isinstance(result, Exception):
                raise result
        return results
