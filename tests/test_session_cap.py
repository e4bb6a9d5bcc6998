"""One worker process holds at most `[tenants] max_smtp_sessions` SMTP sessions across all its accounts."""

from __future__ import annotations

import asyncio
from typing import Any

import aiosmtplib

from pipeline.context import StageContext
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.smtp.pool import Pools

MESSAGE = b"From: a@sender.example\r\nTo: x@receiver.example\r\nSubject: s\r\n\r\nbody\r\n"


def test_many_accounts_never_hold_more_sockets_than_the_cap_and_idle_ones_close_first(
    ctx: StageContext, smtp_server: DevSMTPServer, monkeypatch: Any
) -> None:
    opened: list[aiosmtplib.SMTP] = []
    peak = 0
    real_connect = aiosmtplib.SMTP.connect

    async def counting_connect(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        nonlocal peak
        opened.append(self)
        result = await real_connect(self, *args, **kwargs)
        peak = max(peak, sum(1 for client in opened if client.is_connected))
        return result

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counting_connect)
    alpha = ctx.account("alpha")
    accounts = [alpha.model_copy(update={"name": f"tenant{i}/alpha"}) for i in range(8)]  # 8 accounts, one login

    async def run() -> None:
        pools = Pools(max_sessions=3)

        async def one(i: int) -> None:
            reply = await pools.get(accounts[i % 8]).send("a@sender.example", "x@receiver.example", MESSAGE)
            assert reply.accepted, reply

        for wave in range(3):
            await asyncio.gather(*(one(wave * 8 + i) for i in range(8)))
            assert sum(1 for client in opened if client.is_connected) <= 3
        await pools.close()

    asyncio.run(run())
    assert len(opened) > 3  # sessions were closed and reopened to stay under the cap
    assert peak <= 3, peak
