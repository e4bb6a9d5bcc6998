"""A misbehaving SMTP server: every failure is a clear transport error, retried with back-off, never stuck."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from faultsmtp import Fault, FaultSMTPServer
from scenario import Figures, chaos_config

from pipeline.config import ResolvedAccount, load_config
from pipeline.models import TransportError
from pipeline.plugin_host.presets import Limits, Security
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import TLSFiles
from pipeline.smtp.pool import AccountPool
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.chaos

TIMEOUT = 1.0
SLOW = 2.5  # the slow fault answers after this many seconds: longer than the account timeout

# fault → the transport error (or reply code) the sender must report for it
EXPECTED: dict[Fault, TransportError] = {
    Fault.DROP_BANNER: TransportError.CONNECT,
    Fault.REFUSE_421: TransportError.CONNECT,
    Fault.DROP_EHLO: TransportError.DROPPED,
    Fault.DROP_MAIL: TransportError.DROPPED,
    Fault.DROP_RCPT: TransportError.DROPPED,
    Fault.DROP_DATA: TransportError.DROPPED,
    Fault.DROP_AFTER_DATA: TransportError.DROPPED,
    Fault.SLOW_MAIL: TransportError.TIMEOUT,
    Fault.TLS_FAIL: TransportError.TLS,
    Fault.GARBAGE: TransportError.PROTOCOL,
}


@pytest.fixture
def fault_servers(tls_files: TLSFiles) -> Iterator[Callable[..., FaultSMTPServer]]:
    started: list[FaultSMTPServer] = []

    def start(fault: Fault, faulty: int | None = 1) -> FaultSMTPServer:
        tls = tls_files if fault == Fault.TLS_FAIL else None
        server = FaultSMTPServer(fault, faulty=faulty, slow_seconds=SLOW, tls_files=tls)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def account(server: FaultSMTPServer, tls_files: TLSFiles) -> ResolvedAccount:
    return ResolvedAccount(
        name="faulty",
        provider="smtp",
        host="127.0.0.1",
        port=server.port,
        security=Security.TLS if server.fault == Fault.TLS_FAIL else Security.NONE,
        username=None,
        password=None,
        limits=Limits(),
        pool_size=2,
        timeout=TIMEOUT,
        allow_plaintext_auth=False,
        verify_tls=True,
        ca_file=tls_files.ca_file,
        local_hostname="test.localhost",
        max_message_bytes=1_000_000,
    )


MESSAGE = b"From: a@sender.example\r\nTo: b@receiver.example\r\nSubject: x\r\n\r\nbody\r\n"


@pytest.mark.parametrize("fault", list(EXPECTED), ids=str)
def test_each_fault_is_reported_as_its_transport_error_and_the_next_connection_delivers(
    fault: Fault, fault_servers: Callable[..., FaultSMTPServer], tls_files: TLSFiles
) -> None:
    server = fault_servers(fault, faulty=1)
    pool = AccountPool(account(server, tls_files))

    async def two_sends() -> tuple[object, object, float]:
        started = time.monotonic()
        first = await pool.send("a@sender.example", "b@receiver.example", MESSAGE)
        took = time.monotonic() - started
        second = await pool.send("a@sender.example", "b@receiver.example", MESSAGE)
        await pool.close()
        return first, second, took

    first, second, took = asyncio.run(two_sends())
    assert first.error == EXPECTED[fault], first  # type: ignore[attr-defined]
    assert not first.accepted  # type: ignore[attr-defined]
    assert took < TIMEOUT * 4, "a fault held the sender longer than its timeouts allow"
    assert second.accepted, second  # type: ignore[attr-defined]
    assert len(server.snapshot()) == 1 and server.faults_injected == 1


def fault_accounts(servers: dict[Fault, FaultSMTPServer], tls_files: TLSFiles) -> str:
    text = ""
    for fault, server in servers.items():
        security = "tls" if fault == Fault.TLS_FAIL else "none"
        text += f"""
[[accounts]]
name = "{fault.value}"
host = "127.0.0.1"
port = {server.port}
security = "{security}"
from_email = "{fault.value.replace("_", "-")}@sender.example"
ca_file = "{tls_files.ca_file}"
local_hostname = "test.localhost"
timeout = {TIMEOUT}
pool_size = 2
limits = {{ per_second = 200 }}
"""
    return text


def test_every_fault_ends_final_with_the_right_outcome_and_retries_are_spaced_by_the_backoff(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, fault_servers: Callable[..., FaultSMTPServer], tls_files: TLSFiles
) -> None:
    transient = {fault: fault_servers(fault, faulty=2) for fault in EXPECTED}
    always = fault_servers(Fault.DROP_RCPT, faulty=None)
    healthy = fault_servers(Fault.NONE)
    servers = {**transient}
    accounts = (
        fault_accounts(servers, tls_files)
        + fault_accounts({Fault.DROP_RCPT: always}, tls_files).replace('name = "drop_rcpt"', 'name = "always_drop_rcpt"')
        + fault_accounts({Fault.NONE: healthy}, tls_files)
    )
    routes = "".join(
        f'\n[[routes]]\nmatch = {{ list = "{name}" }}\naccounts = ["{name}"]\n'
        for name in [*(f.value for f in EXPECTED), "always_drop_rcpt"]
    )
    path = chaos_config(tmp_path / "mailpipe.toml", redis_url, accounts, routes=routes, default="none")
    config = load_config(path)
    events = []
    for fault in EXPECTED:
        events += [
            {
                "event_id": f"{fault.value}-{n}",
                "to": f"{fault.value}{n}@receiver.example",
                "list": fault.value,
                "subject": "s",
                "text": "t",
            }
            for n in range(3)
        ]
    events.append(
        {"event_id": "always", "to": "always@receiver.example", "list": "always_drop_rcpt", "subject": "s", "text": "t"}
    )
    figures = Figures("smtp_faults", len(events))
    started = time.monotonic()
    worker = WorkerProcess(path, processes=1, threads=8, log_path=tmp_path / "worker.log").start()
    status = StatusStore(redis_client)
    try:
        report = Submitter(config).submit(events)
        deadline = time.monotonic() + 120
        outcomes = status.outcomes(report.accepted)
        while time.monotonic() < deadline and any(v is None for v in outcomes.values()):
            time.sleep(0.3)
            outcomes = status.outcomes(report.accepted)
        # nothing stuck: a fresh event to the healthy server still goes straight through
        canary_sent = time.monotonic()
        Submitter(config).submit([{"event_id": "canary", "to": "canary@receiver.example", "subject": "s", "text": "t"}])
        canary = status.outcomes(["canary"])
        while time.monotonic() - canary_sent < 20 and canary["canary"] is None:
            time.sleep(0.1)
            canary = status.outcomes(["canary"])
        figures.extra["canary_seconds"] = round(time.monotonic() - canary_sent, 2)
    finally:
        worker.stop()
    recipients = [r.rcpt_to[0] for s in [*servers.values(), always] for r in s.snapshot()]
    figures.count(outcomes, recipients, redis_client, started)
    figures.extra["faults_injected"] = sum(s.faults_injected for s in [*servers.values(), always])
    attempts = always.connection_times()
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(attempts)]
    figures.extra["always_failing_gaps"] = gaps
    figures.report()

    assert canary["canary"] == "sent" and figures.extra["canary_seconds"] < 10
    assert outcomes.pop("always") == "failed"
    assert set(outcomes.values()) == {"sent"}, outcomes
    assert figures.duplicates == 0 and figures.unique_received == len(events) - 1
    for fault, server in servers.items():
        assert server.faults_injected == 2, fault
    history = status.get("default", "always")
    assert history is not None and history.history[-1].get("gave_up") == "max_attempts"
    # attempts 1..6, delays base 0.5 s doubling, capped at 4 s, jitter ±10 %: each gap at least its delay
    retry = config.retry
    assert len(attempts) == retry.max_attempts
    for attempt, gap in enumerate(gaps, start=1):
        expected = min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1)) * (1 - retry.jitter)
        assert gap >= expected, (attempt, gaps)
    deferrals = [h for h in history.history if h["state"] == "deferred"]
    assert len(deferrals) == retry.max_attempts - 1
    for attempt, (entry, gap) in enumerate(zip(deferrals, gaps, strict=True), start=1):
        delay = min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1))
        assert delay * (1 - retry.jitter) <= entry["next_in"] <= delay * (1 + retry.jitter), (attempt, entry)
        assert gap >= entry["next_in"], (attempt, gap, entry)
