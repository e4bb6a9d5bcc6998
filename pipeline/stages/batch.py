"""Apply a stage function to a batch: one bad item fails alone, infrastructure errors raise.

A stage handler works out each item's effects, applies them once, and reports an item it could not
handle as a `DeadLetter` in its `Handled` result instead of raising: that item is kept in the
dead-letter store with its error and given its outcome (`failed`, or `rejected` for a message that
can never be sent as it is); its batch-mates carry on as if it had not been there. Nothing is ever
re-run for the whole batch or item by item, so no effect (a status transition, a throttle record,
a plugin call, a metric) happens twice. An observer hook's error (`call_observers`) is logged,
counted and dead-lettered for its item; the item's outcome stands. A Redis outage
(`INFRASTRUCTURE_ERRORS`) raises, so the broker redelivers the whole (idempotent) batch later.

The send stage's handler runs on the worker's event loop, where it may only await: it leaves its
status writes to `Handled` too, and `run_batch_on_loop` makes them on the calling worker thread
once the loop has answered.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
import redis
import structlog

from pipeline.models import RecipientEvent
from pipeline.observe import journey, metrics
from pipeline.state.status import Transition

if TYPE_CHECKING:
    from pipeline.context import StageContext

log = structlog.get_logger("mailpipe.stage")
T = TypeVar("T")
R = TypeVar("R")

# Redis cannot take the batch right now (down, restarting, read-only replica, out of memory): the
# broker retries the whole batch later, nothing is dead-lettered for it.
INFRASTRUCTURE_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)
PAYLOAD_CHARS = 20_000


@dataclass
class Forward:
    """An item for the next stage, optionally delayed."""

    stage: str
    item: str
    delay: float = 0.0


@dataclass
class DeadLetter:
    """One item set aside: kept in the tenant's dead-letter hash with its error.

    `state` is the outcome it gets (`failed` by default); None keeps the outcome it has, for an
    error that came after its delivery was settled (an observer hook)."""

    tenant: str
    event_id: str  # "" when the item could not even say who it is
    stage: str
    error: str
    payload: str
    state: str | None = RecipientEvent.FAILED


@dataclass
class Handled:
    """What a stage handler did with its batch: forwards, items set aside, status writes left to make."""

    forwards: list[Forward] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # Written by `settle` after the handler (the send stage's loop makes no blocking call); each
    # with its item's payload, for the dead letter should Redis refuse that one write.
    transitions: list[tuple[Transition, str]] = field(default_factory=list)

    def fail(self, stage: str, item: object, exc: BaseException, *, state: str | None = RecipientEvent.FAILED) -> None:
        self.dead.append(dead_letter(stage, payload_of(item), exc, state=state))


def payload_of(item: object) -> str:
    to_json = getattr(item, "to_json", None)
    return str(to_json()) if callable(to_json) else str(item)


def _identity(raw: str) -> tuple[str, str]:
    """Best-effort (tenant, event_id) of an item, for its dead-letter record."""
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return "default", ""
    for path in (("event",), ("message", "event"), ("routed", "message", "event"), ()):
        node = data
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and isinstance(node.get("event_id"), str):
            return str(node.get("tenant", "default")), node["event_id"]
    return "default", ""


def describe(stage: str, exc: BaseException) -> str:
    return f"{stage}: {type(exc).__name__}: {exc}"


def dead_letter(stage: str, raw: str, exc: BaseException, *, state: str | None = RecipientEvent.FAILED) -> DeadLetter:
    tenant, event_id = _identity(raw)
    return DeadLetter(tenant, event_id, stage, describe(stage, exc), raw, state)


def each(stage: str, items: Iterable[T], work: Callable[[T], R], handled: Handled) -> list[tuple[T, R]]:
    """`work(item)` for every item; an item whose work raises (anything but an infrastructure
    error) is dead-lettered alone and left out of the result."""
    done: list[tuple[T, R]] = []
    for item in items:
        try:
            done.append((item, work(item)))
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            handled.fail(stage, item, exc)
    return done


def call_observers(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[str]:
    """Call every plugin's implementation of an observer hook (its return value ignored), each on
    its own: one plugin's error neither stops the others nor reaches the caller; it is logged and
    counted (`mailpipe_plugin_hook_errors_total`). Returns the errors, `plugin: Type: message`."""
    caller = getattr(pm.hook, hook)
    impls = caller.get_hookimpls()
    if not impls:
        return []
    errors: list[str] = []
    for impl in reversed(impls):  # pluggy's own order: the last registered first
        others = [i.plugin for i in impls if i.plugin is not impl.plugin]
        try:
            pm.subset_hook_caller(hook, others)(**kwargs)
        except Exception as exc:
            errors.append(f"{impl.plugin_name}: {type(exc).__name__}: {exc}")
            metrics.hook_error(hook, impl.plugin_name)
            log.error("plugin_hook_failed", hook=hook, plugin=impl.plugin_name, error=f"{type(exc).__name__}: {exc}")
    return errors


def decode_all(stage: str, items: Iterable[str], decode: Callable[[str], T], handled: Handled) -> list[T]:
    decoded: list[T] = []
    for raw in items:
        try:
            decoded.append(decode(raw))
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            handled.dead.append(dead_letter(stage, raw, exc))
    return decoded


def run_batch(
    stage: str,
    items: Iterable[str],
    decode: Callable[[str], T],
    handle: Callable[[list[T], StageContext], Handled],
    ctx: StageContext,
) -> list[Forward]:
    """A synchronous stage (every stage but send) on a worker thread: decode, handle, settle."""
    undecodable = Handled()
    decoded = decode_all(stage, items, decode, undecodable)
    handled = _guarded(stage, decoded, lambda: handle(decoded, ctx)) if decoded else Handled()
    handled.dead[:0] = undecodable.dead
    return settle(stage, handled, ctx)


def run_batch_on_loop(
    stage: str,
    items: Iterable[str],
    decode: Callable[[str], T],
    handle: Callable[[list[T]], Coroutine[Any, Any, Handled]],
    ctx: StageContext,
    on_loop: Callable[[Coroutine[Any, Any, Handled]], Handled],
) -> list[Forward]:
    """An asynchronous stage (send), called on a worker thread: only `handle`'s coroutine runs on the
    event loop (`on_loop` runs it there and waits); decoding and every blocking Redis write (status,
    dead letters) happen here, on the calling thread."""
    undecodable = Handled()
    decoded = decode_all(stage, items, decode, undecodable)
    handled = _guarded(stage, decoded, lambda: on_loop(handle(decoded))) if decoded else Handled()
    handled.dead[:0] = undecodable.dead
    return settle(stage, handled, ctx)


def _guarded(stage: str, decoded: list[Any], handle: Callable[[], Handled]) -> Handled:
    """The handler's result; should it raise all the same (a bug: handlers set bad items aside
    themselves), no item is handled twice: the whole batch is dead-lettered with the error. A
    cancelled event-loop task (the worker shutting down) is no item's fault: the broker retries."""
    try:
        return handle()
    except (*INFRASTRUCTURE_ERRORS, concurrent.futures.CancelledError):
        raise
    except Exception as exc:
        log.error("stage_batch_failed", stage=stage, emails=len(decoded), error=f"{type(exc).__name__}: {exc}")
        handled = Handled()
        for item in decoded:
            handled.fail(stage, item, exc)
        return handled


def settle(stage: str, handled: Handled, ctx: StageContext) -> list[Forward]:
    """Make the writes a handler left (transitions, dead letters) and return its forwards."""
    if handled.transitions:
        refused: dict[int, Exception] = {}
        ctx.status.record([t for t, _ in handled.transitions], refused=refused)
        for index, exc in refused.items():
            transition, raw = handled.transitions[index]
            if isinstance(exc, INFRASTRUCTURE_ERRORS):
                raise exc
            handled.dead.append(
                DeadLetter(transition.tenant, transition.event_id, stage, describe(stage, exc), raw, RecipientEvent.FAILED)
            )
    write_dead_letters(handled.dead, ctx)
    return handled.forwards


def write_dead_letters(dead: list[DeadLetter], ctx: StageContext) -> None:
    outcomes: list[Transition] = []
    for d in dead:
        event_id = d.event_id or f"unknown:{hash(d.payload)}"
        if d.state == RecipientEvent.REJECTED:
            log.info("stage_item_rejected", stage=d.stage, event_id=d.event_id or None, error=d.error)
        else:
            log.error("stage_item_failed", stage=d.stage, event_id=d.event_id or None, error=d.error)
        ctx.status.dead_letter(d.tenant, event_id, d.stage, d.error, d.payload[:PAYLOAD_CHARS])
        metrics.dead_letter(d.stage)
        if d.event_id and d.state is not None:
            outcomes.append(Transition(d.tenant, d.event_id, d.state, {"stage": d.stage, "error": d.error}))
            journey.note(d.event_id, str(d.state), error=d.error[:200])
    if outcomes:
        refused: dict[int, Exception] = {}
        ctx.status.record(outcomes, refused=refused)
        for index, exc in refused.items():  # its dead letter is kept: that is what matters
            if isinstance(exc, INFRASTRUCTURE_ERRORS):
                raise exc
            log.error("stage_item_outcome_refused", event_id=outcomes[index].event_id, error=f"{type(exc).__name__}: {exc}")


def poison(stage: str, raw: str, exc: BaseException, ctx: StageContext) -> None:
    """Dead-letter one raw item now (a broker message that is not a stage message at all)."""
    write_dead_letters([dead_letter(stage, raw, exc)], ctx)
