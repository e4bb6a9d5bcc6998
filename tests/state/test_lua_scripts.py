"""The Lua script registry: one file per script, documented calling conventions, includes, constants."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import redis

from pipeline.state import lua_scripts
from pipeline.state.lua_scripts import LuaScript, ScriptDefinitionError
from pipeline.state.script_pipeline import ScriptPipeline

ROOT = Path(__file__).resolve().parents[2]
LUA_DIR = Path(str(resources.files("pipeline.state").joinpath("lua")))
SCRIPT_NAMES = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
FRAGMENT_NAMES = sorted(p.stem for p in (LUA_DIR / "lib").glob("*.lua"))

INCR = "-- KEYS[1] a counter\n-- ARGV[1] the increment\n\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"


# The runners, and Dramatiq's own dispatch script (called by its registered name in runtime/broker.py).
RUNNERS = frozenset({"state/lua_scripts.py", "state/script_pipeline.py", "state/script_batcher.py", "runtime/broker.py"})


def _python_sources(*, skip: frozenset[str] = frozenset()) -> str:
    root = ROOT / "pipeline"
    return "\n".join(p.read_text() for p in root.rglob("*.py") if str(p.relative_to(root)) not in skip)


def test_every_script_file_is_loaded_by_the_code_and_no_script_is_pasted_inline() -> None:
    sources = _python_sources()
    loaded = set(re.findall(r'lua_scripts\.load\(\s*"([a-z0-9_]+)"', sources))
    assert SCRIPT_NAMES, "no scripts found: is pipeline/state/lua shipped?"
    assert loaded == set(SCRIPT_NAMES)
    assert "register_script(" not in sources  # redis-py's own script objects: a second calling style
    others = _python_sources(skip=RUNNERS)
    assert not re.search(r"\.eval\(|evalsha\(|[\"']EVAL", others), "run scripts through lua_scripts, not EVAL"
    included = {name for path in LUA_DIR.glob("*.lua") for name in re.findall(r"^--#include (\w+)", path.read_text(), re.M)}
    assert included == set(FRAGMENT_NAMES)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_script_documents_its_keys_and_argv_in_its_header(name: str) -> None:
    header = (LUA_DIR / f"{name}.lua").read_text().split("\n\n", 1)[0]
    assert header.startswith(f"-- {name}: "), "the first line names the script and says what it does"
    assert re.search(r"^-- KEYS(\[1\]|\[1\.\.\]|: none)", header, re.M)
    assert re.search(r"^-- ARGV(\[1\]|\[1\.\.\]|: none)", header, re.M)
    assert re.search(r"^-- Returns ", header, re.M)


def test_a_call_with_the_wrong_number_of_keys_or_arguments_is_refused_before_redis_sees_it() -> None:
    claim = lua_scripts.load("ledger_claim")
    assert claim.keys == lua_scripts.Arity(2, variadic=False) and claim.args == lua_scripts.Arity(4, variadic=False)
    with pytest.raises(TypeError, match="ledger_claim takes exactly 4 ARGV, got 5"):
        claim.bind(keys=["l", "e"], args=["token", 1.0, 30, "resend", 86400])  # the old layout, with `now`
    with pytest.raises(TypeError, match="ledger_claim takes exactly 2 KEYS, got 1"):
        claim.bind(keys=["l"], args=["token", 30, "resend", 86400])
    refund = lua_scripts.load("counter_refund")
    assert refund.bind(keys=["a", "b", "c"], args=[]).keys == ("a", "b", "c")  # KEYS[1..]: any number


def test_constants_must_all_be_given_and_all_be_used() -> None:
    with pytest.raises(ScriptDefinitionError, match=r"throttle_record: no value for constant\(s\) DECREASE"):
        lua_scripts.load("throttle_record", MIN_FACTOR=0.05, RECOVERY_STEP=0.1, RECOVERY_QUIET=30.0)
    with pytest.raises(ScriptDefinitionError, match=r"counter_refund: constant\(s\) SPARE not used"):
        lua_scripts.load("counter_refund", SPARE=1)
    with pytest.raises(ScriptDefinitionError, match="must be a number"):
        LuaScript.from_source("x", "-- KEYS: none\n-- ARGV: none\n\nreturn ${N}", N="1; redis.call('FLUSHALL')")


def test_an_include_is_the_fragment_text_and_a_bad_include_or_header_is_an_error() -> None:
    script = LuaScript.from_source("uses_time", "-- KEYS: none\n-- ARGV: none\n\n--#include server_time\nreturn server_time()")
    assert "local function server_time()" in script.source and "--#include" not in script.source
    with pytest.raises(ScriptDefinitionError, match="no Lua script 'nowhere'"):
        LuaScript.from_source("bad", "-- KEYS: none\n-- ARGV: none\n\n--#include nowhere\n")
    with pytest.raises(ScriptDefinitionError, match="header documents no ARGV"):
        LuaScript.from_source("bad", "-- KEYS[1] a key\n\nreturn 1")
    with pytest.raises(ScriptDefinitionError, match=r"ARGV positions \[1, 3\]"):
        LuaScript.from_source("bad", "-- KEYS: none\n-- ARGV[1] a\n-- ARGV[3] c\n\nreturn 1")


def test_run_loads_a_script_redis_forgot(redis_client: redis.Redis) -> None:
    incr = LuaScript.from_source("incr", INCR)
    assert lua_scripts.run(redis_client, incr.bind(keys=["n"], args=[2])) == 2
    redis_client.script_flush()
    assert lua_scripts.run(redis_client, incr.bind(keys=["n"], args=[3])) == 5


def test_a_transactional_script_pipeline_runs_a_forgotten_script_once_after_the_other_commands(
    redis_client: redis.Redis,
) -> None:
    incr = LuaScript.from_source("incr", INCR)
    redis_client.script_flush()
    pipe = ScriptPipeline(redis_client, transaction=True)
    pipe.pipe.set("plain", "1")
    pipe.call(incr.bind(keys=["n"], args=[7]))
    assert pipe.execute() == [True, 7]
    assert redis_client.get("plain") == b"1" and redis_client.get("n") == b"7"
