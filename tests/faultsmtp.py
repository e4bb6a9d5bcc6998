"""A misbehaving SMTP server for tests: drops, refuses, stalls and garbles on purpose.

aiosmtpd is a well-behaved server and cannot drop a connection halfway through a command or
answer with garbage, so this is a small raw asyncio server speaking just enough ESMTP (EHLO,
MAIL, RCPT, DATA, RSET, NOOP, QUIT; optional implicit TLS and SMTPUTF8). One listener injects
one `Fault` into its first `faulty` connections (all of them when `faulty` is None) and behaves
from then on, recording the time of every connection and every message it accepted.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
import threading
import time
from dataclasses import dataclass

from pipeline.smtp.devsmtp import TLSFiles
from pipeline.smtp.netutil import free_port

MAX_LINE = 4096
MAX_MESSAGE = 40_000_000


class Fault(enum.StrEnum):
    NONE = "none"
    DROP_BANNER = "drop_banner"  # accept the connection, close it before the greeting
    REFUSE_421 = "refuse_421"  # greet with 421 and close
    DROP_EHLO = "drop_ehlo"  # close on EHLO
    DROP_MAIL = "drop_mail"  # close on MAIL FROM
    DROP_RCPT = "drop_rcpt"  # close on RCPT TO
    DROP_DATA = "drop_data"  # close on DATA, before 354
    DROP_AFTER_DATA = "drop_after_data"  # read the whole message, close without a reply (and without keeping it)
    SLOW_MAIL = "slow_mail"  # answer MAIL FROM after `slow_seconds`
    TLS_FAIL = "tls_fail"  # implicit-TLS listener that answers the handshake with plaintext
    GARBAGE = "garbage"  # answer EHLO with a line that is no SMTP reply


@dataclass
class FaultReceived:
    at: float
    mail_from: str
    rcpt_to: list[str]
    data: bytes


class _Closed(Exception):
    """The fault says: hang up now."""


class FaultSMTPServer:
    def __init__(
        self,
        fault: Fault = Fault.NONE,
        *,
        faulty: int | None = None,
        slow_seconds: float = 10.0,
        tls_files: TLSFiles | None = None,
        smtputf8: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.fault = fault
        self.faulty = faulty
        self.slow_seconds = slow_seconds
        self.smtputf8 = smtputf8
        self.host = host
        self.port = 0
        self.connections: list[float] = []
        self.received: list[FaultReceived] = []
        self.faults_injected = 0
        self._tls = self._server_context(tls_files) if tls_files else None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @staticmethod
    def _server_context(files: TLSFiles) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files.cert_file, files.key_file)
        return context

    def snapshot(self) -> list[FaultReceived]:
        with self._lock:
            return list(self.received)

    def connection_times(self) -> list[float]:
        with self._lock:
            return list(self.connections)

    def start(self, port: int | None = None) -> int:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._session, self.host, self.port, limit=MAX_LINE * 2)
            )
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"faultsmtp-{self.fault}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault SMTP server did not start")
        return self.port

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    def _next_fault(self) -> Fault:
        with self._lock:
            self.connections.append(time.time())
            index = len(self.connections)
            faulty = self.fault != Fault.NONE and (self.faulty is None or index <= self.faulty)
            if faulty:
                self.faults_injected += 1
            return self.fault if faulty else Fault.NONE

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        fault = self._next_fault()
        try:
            await self._converse(reader, writer, fault)
        except (_Closed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault) -> None:
        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        def hang_up_if(*faults: Fault) -> None:
            if fault in faults:
                raise _Closed

        if self._tls is not None:
            if fault == Fault.TLS_FAIL:
                await reply("220 faultsmtp this is not a TLS handshake")
                raise _Closed
            await writer.start_tls(self._tls)
        hang_up_if(Fault.DROP_BANNER)
        if fault == Fault.REFUSE_421:
            await reply("421 4.3.2 faultsmtp Service not available, closing transmission channel")
            raise _Closed
        await reply("220 faultsmtp ESMTP ready")
        mail_from: str | None = None
        rcpt_to: list[str] = []
        while line := await reader.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                hang_up_if(Fault.DROP_EHLO)
                if fault == Fault.GARBAGE:
                    await reply("\x00\x7fthis is not an SMTP reply")
                    continue
                extensions = ["8BITMIME", f"SIZE {MAX_MESSAGE}", *(["SMTPUTF8"] if self.smtputf8 else [])]
                await reply("\r\n".join(f"250-{e}" for e in ["faultsmtp", *extensions]) + "\r\n250 HELP")
            elif verb == "MAIL":
                hang_up_if(Fault.DROP_MAIL)
                if fault == Fault.SLOW_MAIL:
                    await asyncio.sleep(self.slow_seconds)
                if "SMTPUTF8" in argument.upper() and not self.smtputf8:
                    await reply("555 5.5.4 SMTPUTF8 not offered")
                    continue
                mail_from, rcpt_to = _address(argument), []
                await reply("250 2.1.0 OK")
            elif verb == "RCPT":
                hang_up_if(Fault.DROP_RCPT)
                if mail_from is None:
                    await reply("503 5.5.1 MAIL first")
                    continue
                rcpt_to.append(_address(argument))
                await reply("250 2.1.5 OK")
            elif verb == "DATA":
                hang_up_if(Fault.DROP_DATA)
                if mail_from is None or not rcpt_to:
                    await reply("503 5.5.1 RCPT first")
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                data = await _read_data(reader)
                hang_up_if(Fault.DROP_AFTER_DATA)
                with self._lock:
                    self.received.append(FaultReceived(time.time(), mail_from, rcpt_to, data))
                mail_from, rcpt_to = None, []
                await reply("250 2.0.0 queued")
            elif verb == "RSET":
                mail_from, rcpt_to = None, []
                await reply("250 2.0.0 OK")
            elif verb == "NOOP":
                await reply("250 2.0.0 OK")
            elif verb == "QUIT":
                await reply("221 2.0.0 Bye")
                return
            else:
                await reply("500 5.5.2 command not recognised")


def _address(argument: str) -> str:
    start, end = argument.find("<"), argument.find(">")
    return argument[start + 1 : end] if 0 <= start < end else argument.partition(":")[2].strip()


async def _read_data(reader: asyncio.StreamReader) -> bytes:
    lines: list[bytes] = []
    size = 0
    while True:
        line = await reader.readline()
        if not line:
            raise _Closed
        if line in (b".\r\n", b".\n"):
            return b"".join(lines)
        size += len(line)
        if size > MAX_MESSAGE:
            raise _Closed
        lines.append(line[1:] if line.startswith(b"..") else line)
