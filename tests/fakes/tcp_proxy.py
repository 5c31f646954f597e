"""A TCP proxy on 127.0.0.1 that can play a database going away and coming back.

The tests share one PostgreSQL server, which must not really restart under them; a store that
connects through this proxy sees what a restart looks like from its side: `down()` cuts every
open connection and refuses new ones (as a server that is stopped), `up()` lets them through,
and `sever()` drops the server's end of every connection while the clients' ends stay open, so
that each client finds its connection dead only when it next sends (a restart behind a NAT or a
load balancer, or a client whose loop has not yet read the news).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class _Connection:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    severed: bool = field(default=False)

    def abort(self) -> None:
        self.client.transport.abort()
        self.server.transport.abort()


class FlakyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.is_up = True
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._connections: list[_Connection] = []

    async def __aenter__(self) -> FlakyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        self.down()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def down(self) -> None:
        """Cut every connection now and refuse new ones, until up()."""
        self.is_up = False
        for connection in self._connections:
            connection.abort()
        self._connections.clear()

    def up(self) -> None:
        self.is_up = True

    def sever(self) -> None:
        """Drop the server's end of every connection now; each client's end dies when it next sends."""
        for connection in self._connections:
            connection.severed = True
            connection.server.transport.abort()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        connection = _Connection(client_writer, server_writer)
        self._connections.append(connection)
        for reader, toward_server in ((client_reader, True), (server_reader, False)):
            task = asyncio.create_task(self._pipe(reader, connection, toward_server))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, connection: _Connection, toward_server: bool) -> None:
        writer = connection.server if toward_server else connection.client
        try:
            while data := await reader.read(65536):
                if connection.severed:
                    break  # the client sent on a connection whose server end is gone
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        # One side closed: so does the other, as a dropped TCP connection would; a severed
        # connection's client end stays open until the client sends.
        if connection.severed and not toward_server:
            return
        connection.abort()
        if connection in self._connections:
            self._connections.remove(connection)
