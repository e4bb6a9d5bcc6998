"""One worker process holds at most `[tenants] max_smtp_sessions` SMTP sessions across all its accounts."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiosmtplib

from pipeline.bench.procstats import connections_to
from pipeline.context import StageContext
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.smtp.pool import Pools

MESSAGE = b"From: a@sender.example\r\nTo: x@receiver.example\r\nSubject: s\r\n\r\nbody\r\n"


def test_many_accounts_never_hold_more_sockets_than_the_cap_and_idle_ones_close_first(
    ctx: StageContext, smtp_server: DevSMTPServer, monkeypatch: Any
) -> None:
    # `is_connected` turns false at close(), but the socket closes on the event loop's next turn at
    # the earliest (a TLS one after the close_notify exchange) while the kernel establishes a new
    # connection at once: so the sockets this process holds to the server, in any state, are counted
    # too, at the start of every connect, plus the one being opened.
    opened: list[aiosmtplib.SMTP] = []
    at_connect: list[int] = []
    peak = 0
    real_connect = aiosmtplib.SMTP.connect
    alpha = ctx.account("alpha")

    async def counting_connect(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        nonlocal peak
        opened.append(self)
        at_connect.append(connections_to(os.getpid(), alpha.port) + 1)
        result = await real_connect(self, *args, **kwargs)
        peak = max(peak, sum(1 for client in opened if client.is_connected))
        return result

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counting_connect)
    # 8 accounts whose sessions are not interchangeable (each says its own EHLO name)
    accounts = [alpha.model_copy(update={"name": f"tenant{i}/alpha", "local_hostname": f"t{i}.example"}) for i in range(8)]

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
    assert max(at_connect) <= 3, at_connect


def test_accounts_with_the_same_server_and_login_share_idle_sessions_and_a_new_password_never_does(
    ctx: StageContext, smtp_server: DevSMTPServer, monkeypatch: Any
) -> None:
    opened: list[str] = []
    real_connect = aiosmtplib.SMTP.connect

    async def counting_connect(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        opened.append(self.local_hostname or "")
        return await real_connect(self, *args, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counting_connect)
    alpha, beta = ctx.account("alpha"), ctx.account("beta")
    same_login = [alpha.model_copy(update={"name": f"tenant{i}/relay"}) for i in range(6)]
    other_login = beta.model_copy(update={"name": "tenant9/relay"})
    assert alpha.password is not None and beta.password is not None
    wrong_password = alpha.model_copy(update={"name": "tenant7/relay", "password": beta.password})

    async def run() -> None:
        pools = Pools(max_sessions=10)
        for account in [*same_login, *same_login]:  # one at a time: each finds the last one's idle session
            reply = await pools.get(account).send("a@sender.example", "x@receiver.example", MESSAGE)
            assert reply.accepted, reply
        assert len(opened) == 1 and pools.open_sessions() == 1
        reply = await pools.get(other_login).send("b@sender.example", "x@receiver.example", MESSAGE)
        assert reply.accepted and len(opened) == 2
        # Same server and user name as alpha, another password: it must log in itself (and is refused).
        reply = await pools.get(wrong_password).send("a@sender.example", "x@receiver.example", MESSAGE)
        assert not reply.accepted and reply.error == "auth", reply
        assert len(opened) == 3
        # tenant0 changes its password: the sessions opened with the old one are closed, not reused.
        gamma = ctx.account("gamma")
        changed = same_login[0].model_copy(update={"password": gamma.password, "username": gamma.username})
        quits_before = smtp_server.quits
        reply = await pools.get(changed).send("a@sender.example", "x@receiver.example", MESSAGE)
        assert reply.accepted and len(opened) == 4
        await asyncio.sleep(0.2)
        assert smtp_server.quits == quits_before + 1
        await pools.close()

    asyncio.run(run())


def test_pool_objects_stay_bounded_however_many_accounts_a_worker_sees(ctx: StageContext, smtp_server: DevSMTPServer) -> None:
    alpha = ctx.account("alpha")

    async def run() -> None:
        pools = Pools(max_sessions=2)
        for i in range(40):
            account = alpha.model_copy(update={"name": f"tenant{i}/alpha"})
            reply = await pools.get(account).send("a@sender.example", "x@receiver.example", MESSAGE)
            assert reply.accepted, reply
        assert len(pools.pools) <= 8  # POOLS_PER_SESSION x the cap
        assert "tenant39/alpha" in pools.pools
        await pools.close()

    asyncio.run(run())


def test_sends_queued_behind_their_accounts_pool_size_do_not_make_idle_sessions_close(
    ctx: StageContext, smtp_server: DevSMTPServer, monkeypatch: Any
) -> None:
    opened: list[aiosmtplib.SMTP] = []
    real_connect = aiosmtplib.SMTP.connect

    async def counting_connect(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return await real_connect(self, *args, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counting_connect)
    accounts = [ctx.account(name).model_copy(update={"pool_size": 2}) for name in ("alpha", "beta", "gamma")]

    async def run() -> None:
        pools = Pools(max_sessions=10)

        async def one(i: int) -> None:
            reply = await pools.get(accounts[i % 3]).send("a@sender.example", "x@receiver.example", MESSAGE)
            assert reply.accepted, reply

        for _ in range(3):  # a burst: 60 sends at once, at most 2 per account in a transaction
            await asyncio.gather(*(one(i) for i in range(60)))
        await pools.close()

    asyncio.run(run())
    assert len(opened) == 6, len(opened)  # two per account, reused for all 180 messages


def test_sessions_waiting_for_their_quit_still_count_against_the_cap(
    ctx: StageContext, smtp_server: DevSMTPServer, monkeypatch: Any
) -> None:
    # The reaper QUITs idle sessions; until the server answers, their sockets are open. Sends that
    # start meanwhile must not open new sessions beside them (the bench saw 201 sockets under a cap of 200).
    opened: list[aiosmtplib.SMTP] = []
    peak = 0
    real_connect, real_quit = aiosmtplib.SMTP.connect, aiosmtplib.SMTP.quit

    def connected() -> int:
        return sum(1 for client in opened if client.is_connected)

    async def counting_connect(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        nonlocal peak
        opened.append(self)
        result = await real_connect(self, *args, **kwargs)
        peak = max(peak, connected())
        return result

    async def slow_quit(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)  # a server slow to answer QUIT
        return await real_quit(self, *args, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counting_connect)
    monkeypatch.setattr(aiosmtplib.SMTP, "quit", slow_quit)
    alpha = ctx.account("alpha")
    first, second = (alpha.model_copy(update={"name": f"tenant{i}/alpha", "local_hostname": f"t{i}.example"}) for i in (1, 2))

    async def run() -> None:
        pools = Pools(max_sessions=2)

        async def wave(account: Any) -> None:
            replies = await asyncio.gather(
                *(pools.get(account).send("a@sender.example", "x@receiver.example", MESSAGE) for _ in range(2))
            )
            assert all(reply.accepted for reply in replies), replies

        await wave(first)
        assert pools.open_sessions() == 2
        quitting = asyncio.create_task(pools.budget.quit_idle())
        await asyncio.sleep(0.05)  # both QUITs sent, neither answered
        assert pools.open_sessions() == 2
        await wave(second)  # closes the quitting sessions rather than open beside them
        await quitting
        assert pools.open_sessions() == 2
        await pools.close()

    asyncio.run(run())
    assert len(opened) == 4
    assert peak <= 2, peak
