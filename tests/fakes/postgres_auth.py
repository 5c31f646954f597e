"""A PostgreSQL server that refuses every password, speaking just enough of the wire protocol.

The test server trusts every local connection, so it never refuses a password; this one does,
exactly as a real server answers a wrong one: it asks for the password (cleartext), reads it, and
replies with FATAL 28P01. What the client sent is kept, to check which password it tried.
"""

from __future__ import annotations

import asyncio
import struct

SSL_REQUEST = 80877103


class RefusingPostgres:
    def __init__(self) -> None:
        self.passwords: list[str] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RefusingPostgres:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            startup = await _startup_packet(reader)
            if struct.unpack("!I", startup[:4])[0] == SSL_REQUEST:
                writer.write(b"N")  # no TLS here: the client goes on in plain text
                startup = await _startup_packet(reader)
            user = _parameters(startup[4:]).get("user", "")
            writer.write(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
            await writer.drain()
            kind, body = await _message(reader)
            if kind == b"p":
                self.passwords.append(body.rstrip(b"\0").decode())
            writer.write(_error("FATAL", "28P01", f'password authentication failed for user "{user}"'))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _startup_packet(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    return await reader.readexactly(length - 4)


async def _message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    kind = await reader.readexactly(1)
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    return kind, await reader.readexactly(length - 4)


def _parameters(body: bytes) -> dict[str, str]:
    parts = body.split(b"\0")
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]}


def _error(severity: str, code: str, message: str) -> bytes:
    fields = b"".join(tag + value.encode() + b"\0" for tag, value in ((b"S", severity), (b"V", severity), (b"C", code), (b"M", message)))
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body
