"""Recipient addresses on the wire: IDNA domains in ASCII, SMTPUTF8 only where the server offers it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from faultsmtp import FaultSMTPServer

from pipeline.config import load_config
from pipeline.context import build_context
from pipeline.errors import InvalidEvent
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, SendResult, parse_event
from pipeline.stages.batch import write_dead_letters
from pipeline.stages.send import SendRuntime, send


@pytest.fixture
def server_for(tmp_path: Path, redis_url: str) -> Iterator[Callable[[bool], tuple[FaultSMTPServer, SendRuntime]]]:
    servers: list[FaultSMTPServer] = []

    def start(smtputf8: bool) -> tuple[FaultSMTPServer, SendRuntime]:
        server = FaultSMTPServer(smtputf8=smtputf8)
        server.start()
        servers.append(server)
        path = tmp_path / "mailpipe.toml"
        path.write_text(f"""
[broker]
url = "{redis_url}"
[[accounts]]
name = "plain"
host = "127.0.0.1"
port = {server.port}
security = "none"
from_email = "from@sender.example"
local_hostname = "test.localhost"
timeout = 5
[default]
account = "plain"
""")
        return server, SendRuntime(build_context(load_config(path)))

    yield start
    for server in servers:
        server.stop()


def routed(to: str, event_id: str) -> RoutedMessage:
    event = LeadEvent.model_validate({"event_id": event_id, "to": to, "to_name": "Zoë", "subject": "s", "text": "t"})
    message = RenderedMessage(event=event, subject="Grüße", text="body\n", message_id=f"<{event_id}@sender.example>")
    return RoutedMessage(
        message=message,
        account="plain",
        route="default",
        from_addr="from@sender.example",
        envelope_from="from@sender.example",
        first_attempt_at=time.time(),
    )


def run_send(runtime: SendRuntime, message: RoutedMessage):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await send(message, runtime)
        finally:
            await runtime.pools.close()

    forward, dead = asyncio.run(go())
    if dead is not None:
        write_dead_letters([dead], runtime.ctx)  # what the send actor does with it, off the event loop
    return forward, dead


def test_an_idna_domain_is_sent_in_ascii_to_a_server_without_smtputf8(server_for, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    server, runtime = server_for(False)
    forward, transition = run_send(runtime, routed("lead@bücher.example", "idna"))
    assert transition is None and SendResult.model_validate_json(forward.item).reply.code == 250
    [received] = server.snapshot()
    assert received.rcpt_to == ["lead@xn--bcher-kva.example"] and received.data.isascii()


def test_a_non_ascii_local_part_uses_smtputf8_when_the_server_offers_it(server_for, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    server, runtime = server_for(True)
    forward, transition = run_send(runtime, routed("üser@bücher.example", "utf8"))
    assert transition is None, transition
    assert SendResult.model_validate_json(forward.item).reply.code == 250
    [received] = server.snapshot()
    assert received.rcpt_to == ["üser@xn--bcher-kva.example"] and "üser@".encode() in received.data


def test_a_non_ascii_local_part_is_rejected_clearly_when_the_server_lacks_smtputf8(server_for, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    server, runtime = server_for(False)
    forward, dead = run_send(runtime, routed("üser@bücher.example", "noutf8"))
    assert forward is None and dead.state == "rejected"
    assert "does not offer SMTPUTF8" in dead.error
    assert server.snapshot() == []
    assert b"SMTPUTF8" in redis_client.hget("mailpipe:default:deadletter", "noutf8")


BAD_ADDRESSES = [
    "a@-bad-.example",
    "a@b..example",
    "a b@example.com",
    "@example.com",
    "a@",
    "a@xn--zz.example",
    "a@" + "x" * 300 + ".example",
    "a@example.com\r\nRCPT TO:<v@x.example>",
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_invalid_recipient_addresses_are_refused_at_submit(address: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_event({"event_id": "x", "to": address, "subject": "s", "text": "t"})
    assert raised.value.errors[0].startswith("to:")
