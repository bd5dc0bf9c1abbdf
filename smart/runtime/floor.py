"""The embedded floor: every server of one SMART installation on one machine, from settings.

``Floor`` turns settings into the children the supervisor runs (PostgreSQL,
the hub nats-server, one leaf nats-server per station), checks before
starting anything that the state directory is writable and every port is
free, and answers "is each part healthy, and if not, why?" for the status
page and ``/api/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart.access import stationauth
from smart.bus import hub_roles, messages, subjects, witnessing
from smart.hub.streams import ensure_hub_streams
from smart.hub.web.status import FloorStatus as FloorStatus
from smart.hub.web.status import ServiceHealth as ServiceHealth
from smart.keys import KeyStore
from smart.node.agent import HUB_KEY_NAME
from smart.runtime import nats as natsconf
from smart.runtime import ports
from smart.runtime.postgres import PostgresInstance
from smart.runtime.secrets import secret
from smart.runtime.supervisor import ChildSpec, Health, State, Supervisor
from smart.settings import DRIVER_NATS_PASSWORD_FILE, DRIVER_NATS_USER, Settings

log = structlog.get_logger("smart.floor")

#: The driver's NATS user at the hub (``Settings.hub_nats_signin``): the administrator's side.
DRIVER_USER = DRIVER_NATS_USER


class FloorError(RuntimeError):
    """Something stops the floor from starting; the message is one line naming it."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each part of the floor keeps its files under the state directory."""

    state_dir: Path

    @property
    def postgres_data(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def nats_dir(self) -> Path:
        return self.state_dir / "nats"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def secrets(self) -> Path:
        return self.state_dir / "secrets"

    def nats_config(self, name: str) -> Path:
        return self.nats_dir / f"{name}.conf"

    def jetstream_store(self, name: str) -> Path:
        return self.nats_dir / name / "jetstream"


async def _http_health(url: str, what: str) -> Health:
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            response = await client.get(url)
    except httpx.HTTPError as err:
        return Health(False, f"{what} does not answer at {url}: {type(err).__name__}")
    if response.status_code != 200:
        return Health(False, f"{what} reports {response.status_code}: {response.text.strip()[:200]}")
    return Health(True)


class Floor:
    """The servers of one embedded installation, built from settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        postgres: bool = True,
        nats_servers: bool = True,
        node_agents: bool = False,
    ) -> None:
        self.settings = settings
        self.layout = Layout(settings.state_dir)
        host = settings.host
        self.postgres: PostgresInstance | None = None
        if postgres:
            self.postgres = PostgresInstance(
                data_dir=self.layout.postgres_data,
                host=host,
                port=settings.postgres_port,
                secrets_dir=self.settings.secrets_directory,
                log_path=self.layout.logs / "postgres.log",
            )
        self.hub: natsconf.HubServer | None = None
        self.leaves: dict[str, natsconf.LeafServer] = {}
        if nats_servers:
            self.hub = natsconf.HubServer(
                host=host,
                port=settings.nats_port,
                leaf_port=settings.nats_leaf_port,
                monitor_port=settings.nats_monitor_port,
                store_dir=self.layout.jetstream_store("hub"),
            )
            for station in settings.station_ids:
                self.leaves[station] = natsconf.LeafServer(
                    station=station,
                    host=host,
                    port=settings.station_nats_port(station),
                    monitor_port=settings.station_monitor_port(station),
                    hub_leaf_port=settings.nats_leaf_port,
                    store_dir=self.layout.jetstream_store(station),
                )
        self.node_agents = node_agents and nats_servers
        self.supervisor = Supervisor(self._children(), backoff_initial=settings.restart_backoff_s)
        self._hub_connection: NatsClient | None = None
        self.heartbeats: dict[str, tuple[float, messages.StationHeartbeat]] = {}

    # -- building ---------------------------------------------------------------------------

    async def _create_hub_streams(self) -> None:
        """The hub's buckets and streams exist before any station mirrors or ships to them."""
        assert self.hub is not None
        connection = await nats.connect(self.hub.url, error_cb=_quiet, **self.settings.hub_nats_signin())
        try:
            await ensure_hub_streams(connection.jetstream())
        finally:
            await connection.close()

    def _nats_child(self, server: natsconf.HubServer | natsconf.LeafServer, monitor_port: int) -> ChildSpec:
        config_path = self.layout.nats_config(server.name)
        what = f"nats-server {server.name}"

        def prepare() -> None:
            natsconf.write_config(config_path, self.nats_config_text(server))

        async def health() -> Health:
            return await _http_health(
                f"http://{self.settings.host}:{monitor_port}/healthz?js-enabled-only=true", what
            )

        return ChildSpec(
            name=server.name,
            argv=[str(natsconf.server_binary()), "-c", str(config_path)],
            health=health,
            log_path=self.layout.logs / f"{server.name}.log",
            prepare=prepare,
            stop_timeout=5.0,
            group="station-leaves" if isinstance(server, natsconf.LeafServer) else None,
        )

    # -- station NATS credentials -----------------------------------------------------------

    def _leaf_password(self, station: str) -> str:
        """The station leaf's password at the hub: generated on first use, kept 0600 in the secrets."""
        return secret(
            self.settings.secrets_directory / f"nats-{stationauth.leaf_user_name(station)}.password"
        )

    def station_permissions(self, station: str) -> stationauth.Permissions:
        """What ``station``'s leaf may do at the hub: its own subjects, keys and ledger shipping."""
        return stationauth.station_permissions(station, keyed_buckets=subjects.STATION_KEYED_BUCKETS)

    def nats_config_text(self, server: natsconf.HubServer | natsconf.LeafServer) -> str:
        """A server's configuration with its credentials: every connection to the hub signs in.

        The hub lists the driver's user (the administrator's commands, the operator, this floor and
        ``smart hub run --role all``; never as a leaf), one user per hub role and one user per
        station leaf, with the station's permissions (``smart.access.stationauth``), allowed to
        connect only as a leaf. There is no ``no_auth_user``: a client without credentials is refused.
        """
        if isinstance(server, natsconf.LeafServer):
            station = server.station
            return server.config(
                user=stationauth.leaf_user_name(station), password=self._leaf_password(station)
            )
        leaves = [
            stationauth.leaf_user(station, self._leaf_password(station), self.station_permissions(station))
            for station in self.settings.station_ids
        ]
        return server.config(
            authorization=stationauth.authorization_block(
                [self.driver_user(), *self.hub_role_users(), *leaves]
            )
        )

    def driver_user(self) -> stationauth.NatsUser:
        """The driver: everything but a Business reply (its inbox) or the Business feed's acks."""
        granted = hub_roles.driver_permissions()
        return stationauth.NatsUser(
            DRIVER_USER,
            None,
            stationauth.Permissions(
                publish=granted.publish,
                subscribe=granted.subscribe,
                allow_responses=granted.allow_responses,
                deny_publish=granted.deny_publish,
                deny_subscribe=granted.deny_subscribe,
            ),
            password=secret(self.settings.secrets_directory / DRIVER_NATS_PASSWORD_FILE),
            connection_types=("STANDARD", "WEBSOCKET"),
        )

    def hub_role_users(self) -> list[stationauth.NatsUser]:
        """One user per hub role (vault, floor, business), each with its role's permissions, never a leaf."""
        users = []
        for role in hub_roles.HubRole:
            granted = hub_roles.permissions(role, self.settings.station_ids)
            users.append(
                stationauth.NatsUser(
                    hub_roles.user_name(role),
                    None,
                    stationauth.Permissions(
                        publish=granted.publish,
                        subscribe=granted.subscribe,
                        allow_responses=granted.allow_responses,
                        deny_publish=granted.deny_publish,
                        deny_subscribe=granted.deny_subscribe,
                    ),
                    password=secret(self.settings.secrets_directory / hub_roles.password_file(role)),
                    connection_types=("STANDARD",),
                )
            )
        return users

    def _children(self) -> list[ChildSpec]:
        children: list[ChildSpec] = []
        if self.postgres is not None:
            children.append(self.postgres.child())
        if self.hub is not None:
            hub = self._nats_child(self.hub, self.hub.monitor_port)
            hub.after_ready = self._create_hub_streams
            children.append(hub)
        for leaf in self.leaves.values():
            children.append(self._nats_child(leaf, leaf.monitor_port))
        if self.node_agents:
            children.extend(self._node_child(station) for station in self.leaves)
        return children

    def _node_child(self, station: str) -> ChildSpec:
        """The station's node agent, as ``smart node run`` in a process of its own (as on a Pi)."""
        port = self.settings.station_web_port(station)

        async def health() -> Health:
            return await _http_health(f"http://{self.settings.host}:{port}/healthz", f"node agent {station}")

        def enrol() -> None:
            # On one machine the floor enrols each station: its ledger and witness keys exist before
            # its agent starts, so the hub can register them and never races the agent for the file.
            keys = KeyStore(self.settings.key_directory)
            keys.signing_key(HUB_KEY_NAME)  # the station's trust anchor, provisioned with it
            keys.signing_key(station)
            keys.signing_key(witnessing.witness_name(station))

        return ChildSpec(
            name=f"node-{station}",
            prepare=enrol,
            argv=[sys.executable, "-m", "smart.node", "--station", station],
            health=health,
            log_path=self.layout.logs / f"node-{station}.log",
            env={**os.environ, **self.settings.environment()},
            stop_timeout=10.0,
            group="station-agents",
        )

    def ports(self) -> dict[int, str]:
        """Every loopback port the floor will listen on, with what listens there."""
        wanted: dict[int, str] = {}
        if self.postgres is not None:
            wanted[self.postgres.port] = "PostgreSQL"
        if self.hub is not None:
            wanted[self.hub.port] = "hub NATS client port"
            wanted[self.hub.leaf_port] = "hub NATS leafnode port"
            wanted[self.hub.monitor_port] = "hub NATS monitoring port"
        for leaf in self.leaves.values():
            wanted[leaf.port] = f"station {leaf.station} NATS client port"
            wanted[leaf.monitor_port] = f"station {leaf.station} NATS monitoring port"
            if self.node_agents:
                wanted[self.settings.station_web_port(leaf.station)] = f"station {leaf.station} web app"
        return wanted

    # -- running ----------------------------------------------------------------------------

    def preflight(self, extra_ports: dict[int, str] | None = None) -> None:
        """Refuse to start, changing nothing, when the state directory or a port is unusable."""
        wanted = dict(self.ports())
        for port, what in (extra_ports or {}).items():
            if port in wanted:
                raise FloorError(f"port {port} is configured twice: for {wanted[port]} and for {what}")
            wanted[port] = what
        for port, what in sorted(wanted.items()):
            if not ports.is_free(port, self.settings.host):
                raise FloorError(
                    f"port {port} on {self.settings.host} ({what}) is already in use; "
                    "stop what holds it or choose another port"
                )
        check_state_dir(self.settings.state_dir)

    async def start(self) -> None:
        await self.supervisor.start()
        if self.hub is not None:
            self._hub_connection = await nats.connect(
                self.hub.url,
                **self.settings.hub_nats_signin(),
                name="smart-floor-status",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                allow_reconnect=True,
                error_cb=_quiet,
            )
            await self._hub_connection.subscribe(subjects.HEARTBEATS, cb=self._on_heartbeat)

    async def _on_heartbeat(self, message: Msg) -> None:
        try:
            heartbeat = messages.read_heartbeat(message.subject, message.data)
        except messages.MessageError:
            return  # not a heartbeat, or one station speaking for another
        self.heartbeats[heartbeat.station] = (time.time(), heartbeat)

    async def stop(self) -> None:
        if self._hub_connection is not None:
            with contextlib.suppress(Exception):
                await self._hub_connection.close()
            self._hub_connection = None
        await self.supervisor.stop()

    def database_url(self, database: str = "smart") -> str:
        if self.postgres is None:
            raise FloorError("this floor runs no PostgreSQL")
        return self.postgres.url(database)

    # -- status -----------------------------------------------------------------------------

    async def status(self) -> FloorStatus:
        """Live health of every part, probed now (each probe bounded to about a second)."""
        probes = []
        if self.postgres is not None:
            probes.append(self._database_status())
        if self.hub is not None:
            probes.append(self._hub_status())
        probes.extend(self._station_status(leaf) for leaf in self.leaves.values())
        services = list(await asyncio.gather(*probes))
        if self.node_agents:
            services.extend(self._agent_status(station) for station in self.leaves)
        return FloorStatus(
            healthy=all(s.healthy for s in services), services=services, checked_at=time.time()
        )

    def _agent_status(self, station: str) -> ServiceHealth:
        """A station's agent: its process, and whether the hub heard from it lately."""
        name = f"node-{station}"
        state, pid, restarts, _ = self._base(name)
        problem = self._process_problem(name)
        heard = self.heartbeats.get(station)
        revisions: dict[str, str] = {}
        lag: int | None = None
        behind: int | None = None
        blocked: str | None = None
        alarms: list[str] = []
        if heard is not None:
            revisions = dict(heard[1].revisions)
            lag = heard[1].ledger_lag
            behind = heard[1].mirror_lag
            blocked, alarms = heard[1].trouble()
        if problem:
            health = Health(False, problem)
        elif blocked is not None:
            health = Health(False, f"ledger blocked: {blocked}")
        elif alarms:
            health = Health(False, f"ledger alarm: {alarms[0]}")
        elif heard is None:
            health = Health(False, "no heartbeat from the station yet")
        elif time.time() - heard[0] > self.settings.station_offline_after_s:
            health = Health(False, f"offline: no heartbeat for {time.time() - heard[0]:.0f} s")
        else:
            health = Health(True)
        return ServiceHealth(
            name=name,
            kind="station-agent",
            healthy=health.healthy,
            detail=health.detail,
            state=state,
            pid=pid,
            restarts=restarts,
            station=station,
            online=heard is not None and time.time() - heard[0] <= self.settings.station_offline_after_s,
            revisions=revisions,
            ledger_lag=lag,
            ledger_blocked=blocked,
            ledger_alarms=alarms,
            mirror_lag=behind,
            url=f"http://{self.settings.host}:{self.settings.station_web_port(station)}/",
        )

    def _base(self, name: str) -> tuple[str, int | None, int, str]:
        status = self.supervisor.status[name]
        return status.state.value, status.pid, status.restarts, status.detail

    def _process_problem(self, name: str) -> str | None:
        status = self.supervisor.status[name]
        if status.state is State.RUNNING:
            return None
        detail = f": {status.detail}" if status.detail else ""
        return f"process is {status.state.value}{detail}"

    async def _database_status(self) -> ServiceHealth:
        assert self.postgres is not None
        state, pid, restarts, _ = self._base("postgres")
        problem = self._process_problem("postgres")
        health = Health(False, problem) if problem else await self.postgres.health()
        return ServiceHealth(
            name="postgres",
            kind="database",
            healthy=health.healthy,
            detail=health.detail,
            state=state,
            pid=pid,
            restarts=restarts,
            url=f"postgresql://{self.postgres.host}:{self.postgres.port}/smart",
        )

    async def _hub_status(self) -> ServiceHealth:
        assert self.hub is not None
        state, pid, restarts, _ = self._base(self.hub.name)
        problem = self._process_problem(self.hub.name)
        if problem:
            health = Health(False, problem)
        else:
            health = await self.supervisor.spec(self.hub.name).health()
        storage = None
        if health.healthy and self._hub_connection is not None:
            try:
                info = await asyncio.wait_for(self._hub_connection.jetstream().account_info(), 1.0)
                storage = info.storage
            except Exception as err:
                health = Health(False, f"JetStream domain hub does not answer: {type(err).__name__}")
        return ServiceHealth(
            name=self.hub.name,
            kind="hub-nats",
            healthy=health.healthy,
            detail=health.detail,
            state=state,
            pid=pid,
            restarts=restarts,
            jetstream_domain=natsconf.HUB_DOMAIN,
            storage_bytes=storage,
            url=self.hub.url,
        )

    async def _leaf_health(self, leaf: natsconf.LeafServer) -> tuple[Health, int | None]:
        """Whether the station's leaf is signed in to the hub, and what its JetStream stores."""
        assert self.hub is not None
        host = self.settings.host
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                leafz = (await client.get(f"http://{host}:{self.hub.monitor_port}/leafz")).json()
                jsz = (await client.get(f"http://{host}:{leaf.monitor_port}/jsz")).json()
        except (httpx.HTTPError, ValueError) as err:
            return Health(
                False, f"the monitoring of {leaf.name} or the hub does not answer: {type(err).__name__}"
            ), None
        storage = jsz.get("storage")
        if not any(item.get("name") == leaf.server_name for item in leafz.get("leafs") or []):
            return Health(
                False, f"JetStream domain {leaf.domain} is not connected to the hub: is the leaf signed in?"
            ), storage
        return Health(True), storage

    async def _station_status(self, leaf: natsconf.LeafServer) -> ServiceHealth:
        state, pid, restarts, _ = self._base(leaf.name)
        problem = self._process_problem(leaf.name)
        storage = None
        if problem:
            health = Health(False, problem)
        else:
            # Asked of the servers' monitoring ports, not over NATS: a station's leaf signs in with
            # least privilege and answers no JetStream API request from the hub.
            health, storage = await self._leaf_health(leaf)
        return ServiceHealth(
            name=leaf.name,
            kind="station-leaf",
            healthy=health.healthy,
            detail=health.detail,
            state=state,
            pid=pid,
            restarts=restarts,
            station=leaf.station,
            jetstream_domain=leaf.domain,
            storage_bytes=storage,
            url=leaf.url,
        )


async def _quiet(err: Exception) -> None:
    """nats-py reports every failed reconnect; the status page says it once, in words."""
    log.debug("floor.nats_error", error=type(err).__name__)


def check_state_dir(state_dir: Path) -> None:
    """Refuse an unusable state directory before anything is started or written elsewhere."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise FloorError(f"state directory {state_dir} is not writable: {reason}") from err
