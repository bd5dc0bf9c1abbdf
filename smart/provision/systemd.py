"""A station Pi's systemd units: its leaf nats-server and ``smart node run``, enforcing with the hub away.

A k3s agent that reboots while its server is unreachable starts no pods, so a Pi that must come
back enforcing runs its leaf and agent as units of its own. Neither unit waits for the network
(no ``network-online.target``): the agent enforces from its store before it has any connection,
and the leaf redials the hub every 100 ms once the network is there. Both restart on failure,
forever, and run as the ``smart`` user (the image's uid 10001, so the chart's station pods can
share the same store) with the host made read-only around them.

The leaf's configuration holds the station's nkey seed and is written 0600; the hub's public
key is copied into the station's keys directory, its trust anchor; the station's own ledger and
witness keys are generated there, on the Pi, and their public halves printed for the hub.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from smart.bus import witnessing
from smart.keys import KeyStore
from smart.node.agent import HUB_KEY_NAME
from smart.runtime import nats as natsconf
from smart.settings import Settings

#: The uid and gid of the image's user: pods and units share the hostPath store.
SMART_UID = 10001
#: What a station id may be (a Kubernetes node name and a NATS subject token alike).
STATION_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a provisioned station's files go (the defaults are a Pi's; tests put them in a temp dir)."""

    etc_dir: Path = Path("/etc/smart")
    unit_dir: Path = Path("/etc/systemd/system")

    def env_file(self, station: str) -> Path:
        return self.etc_dir / f"station-{station}.env"

    def leaf_config(self, station: str) -> Path:
        return self.etc_dir / "nats" / f"leaf-{station}.conf"

    @property
    def hub_ca(self) -> Path:
        return self.etc_dir / "nats" / "hub-ca.crt"

    def leaf_unit(self, station: str) -> Path:
        return self.unit_dir / leaf_unit_name(station)

    def node_unit(self, station: str) -> Path:
        return self.unit_dir / node_unit_name(station)


def leaf_unit_name(station: str) -> str:
    return f"smart-leaf-{station}.service"


def node_unit_name(station: str) -> str:
    return f"smart-node-{station}.service"


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What was written, and the public keys the hub must register for this station."""

    station: str
    files: tuple[Path, ...]
    station_key_id: str
    witness_key_id: str


def environment(settings: Settings) -> dict[str, str]:
    """The settings ``smart node run`` gets on the Pi (the unit's EnvironmentFile)."""
    return {
        "SMART_STATE_DIR": str(settings.state_dir),
        "SMART_KEYS_DIR": str(settings.key_directory),
        "SMART_STATIONS": str(settings.stations),
        "SMART_HOST": settings.host,
        "SMART_STATION_NATS_PORT_BASE": str(settings.station_nats_port_base),
        "SMART_STATION_MONITOR_PORT_BASE": str(settings.station_monitor_port_base),
        "SMART_STATION_WEB_PORT_BASE": str(settings.station_web_port_base),
        # The Pi's own station: any id, its ports its own (not a position among a floor's ids).
        **(
            {
                "SMART_NODE_STATION": settings.node_station,
                "SMART_NODE_LEAF_PORT": str(settings.node_leaf_port),
                "SMART_NODE_MONITOR_PORT": str(settings.node_monitor_port),
                "SMART_NODE_WEB_PORT": str(settings.node_web_port),
            }
            if settings.node_station is not None
            else {}
        ),
        "SMART_STATION_GPIO": settings.station_gpio,
        "SMART_LOG_LEVEL": settings.log_level,
        "SMART_SHOP_TIMEZONE": settings.shop_timezone,
        # No settings file: everything the station runs with is in this file.
        "SMART_SETTINGS_FILE": "/nonexistent/smart.toml",
    }


def leaf_config(
    settings: Settings, station: str, *, hub_leafnode: str, nkey_seed: str, hub_ca: Path | None = None
) -> str:
    """The station's leaf: JetStream domain = station id, store beside the agent's, a remote to the hub.

    With ``hub_ca`` the remote speaks TLS and accepts only a hub certificate that CA signed.
    """
    store = settings.state_dir / "nats" / station / "jetstream"
    tls = f", tls: {{ ca_file: {json.dumps(str(hub_ca))} }}" if hub_ca is not None else ""
    return "\n".join(
        [
            f"server_name: {json.dumps(f'smart-{station}')}",
            f"host: {json.dumps(settings.host)}",
            f"port: {settings.station_nats_port(station)}",
            f"http: {json.dumps(f'{settings.host}:{settings.station_monitor_port(station)}')}",
            "jetstream {",
            f"  domain: {json.dumps(station)}",
            f"  store_dir: {json.dumps(str(store))}",
            "}",
            "leafnodes {",
            f"  reconnect: {json.dumps(natsconf.LEAF_RECONNECT)}",
            "  remotes: [",
            f"    {{ url: {json.dumps(hub_leafnode)}, nkey: {json.dumps(nkey_seed)}{tls} }}",
            "  ]",
            "}",
            "",
        ]
    )


_HARDENING = [
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "CapabilityBoundingSet=",
]


def _unit(
    description: str, *, after: list[str], service: list[str], state_dir: Path, wants: tuple[str, ...] = ()
) -> str:
    return "\n".join(
        [
            "[Unit]",
            f"Description={description}",
            "Documentation=https://github.com/smart-aero/smart#a-station-pi-k3s-agent-systemd",
            # Enforcement never waits for the network: no network-online.target here.
            *(f"After={unit}" for unit in after),
            # Wanted, not required: the agent enforces even while its leaf is down.
            *(f"Wants={unit}" for unit in wants),
            # Restart however often it fails: a station gives up on enforcing never.
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            "Type=simple",
            *service,
            "Restart=always",
            "RestartSec=1",
            f"ReadWritePaths={state_dir}",
            *_HARDENING,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def leaf_unit(station: str, *, nats_server: Path, layout: Layout, user: str, state_dir: Path) -> str:
    return _unit(
        f"SMART station {station}: leaf nats-server (JetStream domain {station})",
        after=["local-fs.target"],
        service=[
            f"User={user}",
            f"Group={user}",
            f"ExecStart={shlex.join([str(nats_server), '-c', str(layout.leaf_config(station))])}",
        ],
        state_dir=state_dir,
    )


#: The device groups of Raspberry Pi OS: GPIO (stack light, relay, e-stop), camera, sound.
DEVICE_GROUPS = ("gpio", "video", "audio")


def device_groups() -> tuple[str, ...]:
    """The device groups this machine has (a unit naming a missing group would not start)."""
    import grp

    found = []
    for name in DEVICE_GROUPS:
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        found.append(name)
    return tuple(found)


def node_unit(
    station: str,
    *,
    smart_bin: Path,
    layout: Layout,
    user: str,
    state_dir: Path,
    groups: tuple[str, ...] = DEVICE_GROUPS,
) -> str:
    return _unit(
        f"SMART station {station}: node agent and modules (smart node run)",
        after=["local-fs.target", leaf_unit_name(station)],
        service=[
            f"User={user}",
            f"Group={user}",
            # GPIO (stack light, relay, e-stop), camera and sound: only the groups, never root.
            *([f"SupplementaryGroups={' '.join(groups)}"] if groups else []),
            f"EnvironmentFile={layout.env_file(station)}",
            f"WorkingDirectory={state_dir}",
            f"ExecStart={shlex.join([str(smart_bin), 'node', 'run', '--station', station])}",
            # The interlock relay drops when the process stops; give it time to record why.
            "TimeoutStopSec=20",
        ],
        state_dir=state_dir,
        wants=(leaf_unit_name(station),),
    )


def _write(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)
    return path


def provision(
    settings: Settings,
    station: str,
    *,
    hub_key: Path,
    nkey_seed: str,
    hub_leafnode: str,
    smart_bin: Path,
    nats_server: Path,
    layout: Layout,
    user: str,
    owner: tuple[int, int] | None,
    hub_ca: Path | None = None,
) -> Provisioned:
    """Write the station's configuration, keys and units; ``owner`` (uid, gid) owns what the units write.

    Everything is checked before anything is written: an unknown station, a hub key that is not
    an Ed25519 public key or a seed that is not a user nkey change nothing.
    """
    if not STATION_ID.fullmatch(station):
        raise ValueError(
            f"station {station!r} is not a station id (lowercase letters, digits and '-', e.g. pt-2)"
        )
    # The station's identity is provisioned, not a position among a floor's ids: any id works.
    settings = settings.model_copy(update={"node_station": station})
    if not nkey_seed.startswith("SU"):
        raise ValueError(
            "the nkey seed must be a NATS user seed (SU…), as `smart station credentials` writes"
        )
    try:
        hub = serialization.load_pem_public_key(hub_key.read_bytes())
    except (OSError, ValueError) as err:
        raise ValueError(f"--hub-key {hub_key}: not a readable PEM public key ({err})") from err
    if not isinstance(hub, Ed25519PublicKey):
        raise ValueError(f"--hub-key {hub_key}: not an Ed25519 public key")
    ca_text: bytes | None = None
    if hub_ca is not None:
        try:
            ca_text = hub_ca.read_bytes()
        except OSError as err:
            raise ValueError(f"--hub-ca {hub_ca}: {err.strerror}") from err
        if b"-----BEGIN CERTIFICATE-----" not in ca_text:
            raise ValueError(f"--hub-ca {hub_ca}: not a PEM certificate")
    keys = KeyStore(settings.key_directory)
    keys.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    anchor = keys.directory / f"{HUB_KEY_NAME}.pub"
    anchor.write_bytes(hub_key.read_bytes())
    station_key = keys.signing_key(station)
    witness_key = keys.signing_key(witnessing.witness_name(station))
    for directory in (settings.state_dir, settings.station_data_dir(station), settings.state_dir / "nats"):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = "".join(f"{name}={value}\n" for name, value in environment(settings).items())
    files = []
    if ca_text is not None:
        files.append(_write(layout.hub_ca, ca_text.decode("ascii"), 0o644))
    files += [
        _write(layout.env_file(station), env, 0o644),
        _write(
            layout.leaf_config(station),
            leaf_config(
                settings,
                station,
                hub_leafnode=hub_leafnode,
                nkey_seed=nkey_seed,
                hub_ca=layout.hub_ca if ca_text is not None else None,
            ),
            0o600,
        ),
        _write(
            layout.leaf_unit(station),
            leaf_unit(
                station, nats_server=nats_server, layout=layout, user=user, state_dir=settings.state_dir
            ),
            0o644,
        ),
        _write(
            layout.node_unit(station),
            node_unit(
                station,
                smart_bin=smart_bin,
                layout=layout,
                user=user,
                state_dir=settings.state_dir,
                groups=device_groups(),
            ),
            0o644,
        ),
    ]
    if owner is not None:
        uid, gid = owner
        for path in [layout.leaf_config(station), *sorted(settings.state_dir.rglob("*")), settings.state_dir]:
            os.chown(path, uid, gid)
    return Provisioned(station, tuple(files), station_key.key_id, witness_key.key_id)
