"""A TCP proxy in front of PostgreSQL that counts round trips on the wire.

Every client message that makes the server answer with ReadyForQuery ends a round trip: a
simple Query ('Q') or an extended-protocol Sync ('S'). Counting those in the client -> server
stream measures what the app really sends, whatever library builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass
class WireCounter:
    round_trips: int = 0
    queries: list[str] = field(default_factory=list)  # the simple-protocol texts, in order

    def reset(self) -> None:
        self.round_trips = 0
        self.queries.clear()


class _ClientStream:
    """Splits one client's byte stream into protocol messages."""

    def __init__(self, counter: WireCounter) -> None:
        self.counter = counter
        self.buffer = b""
        self.started = False  # past the untyped startup message

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                self.buffer = self.buffer[length:]
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                    self.started = True
                continue
            if len(self.buffer) < 5:
                return
            kind = self.buffer[:1]
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            if kind in (b"Q", b"S"):
                self.counter.round_trips += 1
            if kind == b"Q":
                self.counter.queries.append(body.rstrip(b"\0").decode())


class WireProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.counter = WireCounter()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        stream = _ClientStream(self.counter)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    if count:
                        stream.feed(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
