"""One try at the hub NATS for a command a person waits on, and the refusal it says when none answers.

nats-py's defaults retry a first connection 60 times, 2 s apart: right for what runs for days (a
hub role, a station, ``smart up``), which must ride out a restart, and wrong for a command typed
in a terminal or a click on a page, which would sit silent for two minutes. Those try once and
raise :class:`HubUnreachable`, naming where they tried by host and port only (a chart's URL
carries the driver's password) and that nothing changed, before anything was read or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NatsClient

log = structlog.get_logger("smart.bus")

#: One try, a refusal or no answer said at once. A closed port refuses at once; the timeout is for
#: a host that drops packets, and leaves a loaded floor's handshake room (both cores busy).
AT_ONCE: dict[str, Any] = {
    "allow_reconnect": False,
    "max_reconnect_attempts": 1,
    "reconnect_time_wait": 0.1,
    "connect_timeout": 10,
}
#: The hub NATS's port when its URL names none (nats-py's too).
NATS_PORT = 4222


class HubUnreachable(Exception):
    """Nobody answered where a command was sent, so it read and wrote nothing; ``advice`` says what to do.

    ``said`` is what was tried and how it failed, ``where`` its host and port (never a password).
    """

    def __init__(self, said: str, *, where: str, advice: str) -> None:
        self.said, self.where, self.advice = said, where, advice
        super().__init__(f"{said}; nothing changed. {advice}")


def address(url: str, *, default_port: int) -> str:
    """Where ``url`` (one server or several, comma-separated) points: host and port, never user or password.

    A chart's hub NATS URL carries the driver's password; a refusal naming where it tried must
    not print it (to a terminal, a page, a log).
    """
    found = []
    for one in url.split(","):
        parts = urlsplit(one.strip() if "//" in one else f"//{one.strip()}")
        host = parts.hostname or "?"
        try:
            port = parts.port or default_port
        except ValueError:  # not a port at all: say so rather than echo what followed the colon
            port = None
        host = f"[{host}]" if ":" in host else host
        found.append(f"{host}:{port}" if port is not None else f"{host}:(no port)")
    return ", ".join(found)


#: What a person does when the floor did not answer a command they typed.
START_THE_FLOOR = "Start the floor (smart up) and try again"


async def connect(
    url: str, *, name: str, signin: Mapping[str, Any], what: str, who: str, advice: str
) -> NatsClient:
    """A connection to ``url`` tried once; no answer, or a refused sign-in, raises :class:`HubUnreachable`.

    ``what`` names the server for the refusal ("the hub NATS"), ``who`` whose sign-in it was
    ("the driver's").
    """
    connected = False

    async def said(err: Exception) -> None:
        # nats-py's own callback prints a traceback per try; until connected, the refusal says it once.
        if connected:
            log.warning("hub_nats.error", client=name, error=f"{type(err).__name__}: {err}"[:200])

    where = address(url, default_port=NATS_PORT)
    try:
        connection = await nats.connect(url, name=name, error_cb=said, **AT_ONCE, **signin)
    except (OSError, TimeoutError, nats.errors.Error) as err:  # nothing listens, or it refused the sign-in
        raise HubUnreachable(
            f"{what} at {where} did not answer or refused {who} sign-in ({type(err).__name__})",
            where=where,
            advice=advice,
        ) from err
    connected = True
    return connection
