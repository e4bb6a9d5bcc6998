"""send as a function against the real SMTP fixture: TLS modes, AUTH, pooling, the ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from testbed import account_toml

from pipeline.config import load_config
from pipeline.context import StageContext, build_context
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, SendResult, TransportError
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.stages.send import SendRuntime, send


def routed(account: str = "alpha", event_id: str = "s1") -> RoutedMessage:
    event = LeadEvent.model_validate({"event_id": event_id, "to": "lead@receiver.example", "subject": "s", "text": "t"})
    message = RenderedMessage(event=event, subject="Subject here", text="Body here\n", message_id=f"<{event_id}@sender.example>")
    return RoutedMessage(
        message=message,
        account=account,
        route="default",
        from_addr=f"{account}@sender.example",
        envelope_from=f"bounces@{account}.example",
        first_attempt_at=time.time(),
    )


def run(ctx: StageContext, *messages: RoutedMessage) -> list[SendResult]:
    async def go() -> list[SendResult]:
        runtime = SendRuntime(ctx)
        out = []
        for m in messages:
            forward, _ = await send(m, runtime)
            assert forward is not None and forward.stage == "classify"
            out.append(SendResult.model_validate_json(forward.item))
        await runtime.pools.close()
        return out

    return asyncio.run(go())


def test_starttls_with_auth_delivers_and_reuses_one_session(ctx: StageContext, smtp_server: DevSMTPServer) -> None:
    results = run(ctx, routed(event_id="a"), routed(event_id="b"), routed(event_id="c"))
    assert [r.reply.code for r in results] == [250, 250, 250]
    received = smtp_server.snapshot()
    assert [r.mail_from for r in received] == ["bounces@alpha.example"] * 3
    assert received[0].header("Message-ID") == "<a@sender.example>"
    assert all(r.auth_user == "alpha" for r in received)


def test_implicit_tls_account_delivers(
    write_config: Callable[..., Path], smtp_server: DevSMTPServer, tls_files: TLSFiles
) -> None:
    accounts = account_toml("alpha", smtp_server.ports["tls"], tls_files.ca_file, security="tls") + account_toml(
        "gamma", smtp_server.ports["starttls"], tls_files.ca_file
    )
    ctx = build_context(load_config(write_config(accounts=accounts, routes="")))
    [result] = run(ctx, routed())
    assert result.reply.code == 250 and smtp_server.snapshot()[0].port == smtp_server.ports["tls"]


def test_a_certificate_from_an_unknown_ca_is_a_tls_error(
    write_config: Callable[..., Path], smtp_server: DevSMTPServer, tmp_path: Path
) -> None:
    from pipeline.smtp.devsmtp import make_tls_files

    other_ca = make_tls_files(tmp_path / "other").ca_file
    accounts = account_toml("alpha", smtp_server.ports["tls"], other_ca, security="tls") + account_toml(
        "gamma", smtp_server.ports["starttls"], other_ca
    )
    ctx = build_context(load_config(write_config(accounts=accounts, routes="")))
    [result] = run(ctx, routed())
    assert result.reply.error == TransportError.TLS and not smtp_server.snapshot()


def test_a_wrong_password_is_an_auth_error_with_the_servers_reply(
    ctx: StageContext, smtp_server: DevSMTPServer, monkeypatch
) -> None:
    smtp_server.users = {"alpha": "something-else"}
    [result] = run(ctx, routed())
    assert result.reply.error == TransportError.AUTH and result.reply.code == 535
    assert "Authentication credentials invalid" in result.reply.text
    assert "alpha-secret-pw-1" not in result.to_json()


def test_the_ledger_prevents_a_second_send_of_an_accepted_event(ctx: StageContext, smtp_server: DevSMTPServer) -> None:
    first, again = run(ctx, routed(event_id="once"), routed(event_id="once"))
    assert first.reply.code == 250 and not first.reply.from_ledger
    assert again.reply.code == 250 and again.reply.from_ledger
    assert len(smtp_server.snapshot()) == 1


def test_a_refused_recipient_is_reported_and_the_session_stays_usable(ctx: StageContext, smtp_server: DevSMTPServer) -> None:
    smtp_server.rcpt_responder = lambda address, server: "550 5.1.1 user unknown" if address.startswith("lead") else None
    [refused] = run(ctx, routed(event_id="r"))
    assert (refused.reply.code, refused.reply.enhanced) == (550, "5.1.1")


def test_a_closed_port_is_a_connect_error(write_config: Callable[..., Path], tls_files: TLSFiles) -> None:
    from pipeline.smtp.netutil import free_port

    port = free_port()
    accounts = account_toml("alpha", port, tls_files.ca_file) + account_toml("gamma", port, tls_files.ca_file)
    ctx = build_context(load_config(write_config(accounts=accounts, routes="")))
    [result] = run(ctx, routed())
    assert result.reply.error == TransportError.CONNECT
