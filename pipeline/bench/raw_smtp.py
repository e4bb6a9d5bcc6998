"""The baseline: aiosmtplib straight to the sink, N connections in one process, no pipeline at all."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import aiosmtplib

from pipeline.bench.procstats import cpu_seconds, snapshot

LOCAL_HOSTNAME = "bench.localhost"  # without it aiosmtplib calls socket.getfqdn() on every connect


@dataclass
class RawResult:
    emails: int
    seconds: float
    client_cpu: float  # this process
    sink_cpu: float

    @property
    def rate(self) -> float:
        return self.emails / self.seconds if self.seconds else 0.0


async def _connection(port: int, message: bytes, sender: str, recipient: str, remaining: list[int]) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname=LOCAL_HOSTNAME, start_tls=False, timeout=30)
    await client.connect()
    try:
        while remaining[0] > 0:
            remaining[0] -= 1
            await client.mail(sender)
            await client.rcpt(recipient)
            await client.data(message)
    finally:
        await client.quit()


async def _send_all(port: int, message: bytes, count: int, connections: int) -> None:
    remaining = [count]
    await asyncio.gather(
        *(_connection(port, message, "sender@bench.example", f"lead{i}@bench.example", remaining) for i in range(connections))
    )


def run_raw(port: int, message: bytes, count: int, connections: int = 20, sink_pid: int | None = None) -> RawResult:
    """Send `count` copies of `message` over `connections` sessions; wall time from first connect to last 250."""
    pids = [os.getpid(), *([sink_pid] if sink_pid else [])]
    asyncio.run(_send_all(port, message, min(count, connections * 5), connections))  # warm-up: imports, first connects
    before = snapshot(pids)
    started = time.perf_counter()
    asyncio.run(_send_all(port, message, count, connections))
    seconds = time.perf_counter() - started
    after = snapshot(pids)
    return RawResult(
        emails=count,
        seconds=seconds,
        client_cpu=cpu_seconds(before, after, [os.getpid()]),
        sink_cpu=cpu_seconds(before, after, [sink_pid]) if sink_pid else 0.0,
    )
