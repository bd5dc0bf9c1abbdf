"""A TCP link that tests can cut and mend: a station's leaf connection to the hub, partitioned for real.

It forwards bytes between a listening port and a target port. ``cut()``
drops every connection and refuses new ones, as a pulled cable or a
firewall rule would; ``mend()`` lets connections through again.
"""

from __future__ import annotations

import asyncio
import contextlib


class Link:
    def __init__(self, *, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.listen_port = listen_port
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = False

    async def mend(self) -> None:
        self._open = True
        if self._server is None:
            self._server = await asyncio.start_server(self._connect, self.host, self.listen_port)

    async def cut(self) -> None:
        self._open = False
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        self._writers.clear()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        if not self._open:  # cut while this connection was being made: it never goes through
            writer.transport.abort()
            target_writer.transport.abort()
            return
        self._writers.update((writer, target_writer))
        for source, sink in ((reader, target_writer), (target_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
