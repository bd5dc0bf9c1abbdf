"""``/metrics`` for a process that has no web app: a module run on its own (``smart module run``).

A module process is one of up to fourteen on a Pi, and loads no web stack (a test holds it to
that): this is a small HTTP/1.1 server on the process's own event loop, h11 reading and writing
the protocol, answering ``GET``/``HEAD`` of ``/metrics`` (the Prometheus text format) and
``/healthz``, everything else 404 (405 for another method). It runs on the loop that moves the
counters, so a scrape reads them with no thread in between. Connections are kept alive, as
Prometheus keeps them between scrapes, and closed after :data:`IDLE_S` without a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import h11
import structlog

log = structlog.get_logger("smart.node.metrics_endpoint")

#: The text format's content type, as prometheus-client serves it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: A kept-alive connection with no request for this long is closed (Prometheus reconnects).
IDLE_S = 120.0
#: Bytes read from the socket at a time (h11 bounds how large a request head may grow).
READ_CHUNK = 65536


def _route(method: bytes, target: bytes, render: Callable[[], bytes]) -> tuple[int, bytes, str]:
    path = target.split(b"?", 1)[0]
    if path not in (b"/metrics", b"/healthz"):
        return 404, b"not found: this process serves /metrics and /healthz\n", "text/plain; charset=utf-8"
    if method not in (b"GET", b"HEAD"):
        return 405, b"method not allowed: GET or HEAD\n", "text/plain; charset=utf-8"
    if path == b"/healthz":
        return 200, b"ok\n", "text/plain; charset=utf-8"
    return 200, render(), CONTENT_TYPE


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, render: Callable[[], bytes]
) -> None:
    connection = h11.Connection(h11.SERVER)
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_CHUNK), IDLE_S)
                except TimeoutError:
                    return
                connection.receive_data(chunk)  # b"" is the peer closing: h11 says ConnectionClosed
            elif isinstance(event, h11.Request):
                status, body, content_type = _route(event.method, event.target, render)
                headers = [("content-type", content_type), ("content-length", str(len(body)))]
                if status == 405:
                    headers.append(("allow", "GET, HEAD"))
                writer.write(connection.send(h11.Response(status_code=status, headers=headers)))
                if event.method != b"HEAD":
                    writer.write(connection.send(h11.Data(data=body)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
            elif isinstance(event, h11.EndOfMessage):
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    return  # either side asked to close (Connection: close, HTTP/1.0)
                connection.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return
            # h11.Data of a request body: read and ignored (no route takes one)
    except h11.RemoteProtocolError as err:
        if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(Exception):
                text = f"bad request: {err}\n".encode()
                headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(text)))]
                writer.write(connection.send(h11.Response(status_code=400, headers=headers)))
                writer.write(connection.send(h11.Data(data=text)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
    except (ConnectionError, h11.LocalProtocolError):
        return
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve_metrics(render: Callable[[], bytes], host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port`` (0: a free one; the bound port is ``server.sockets[0]``) until closed."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve(reader, writer, render)

    server = await asyncio.start_server(answer, host, port)
    return server


def bound_port(server: asyncio.Server) -> int:
    """The port ``server`` listens on (the one the OS chose for port 0)."""
    port: int = server.sockets[0].getsockname()[1]
    return port
