"""The hub services per hub role, built from settings alone: which service runs on which hub, and its start.

``ROLE_SERVICES`` is the one place that says where a service runs (from
DESIGN's hub list): the Vault holds identity and personal data (SMART-ID,
Education, PeopleOps), the Floor the stations' side (the ledger intake and
gathering, HandoffCentral, the reorder board, the work services, the
publisher of the Business subset, Pay), Business only what faces the client (its
one-way feed of the published subset, the client API, Growth, Feedback). Every role runs
HubQuery over its own data. A :class:`HubServices` of one role connects to
NATS as that role's user and to PostgreSQL as that role's login role
(:mod:`smart.hub.database_roles`); role ``all`` is the single hub of before,
on the driver's user. :class:`HubRoles` is the three roles
side by side on one machine (``smart up``).

Education runs on the Vault, not on Business as DESIGN's list has it: a
completion is a personal training record and grants a credential through
SMART-ID, and the Business hub can neither read the Vault nor publish back.
Pay runs on the Floor, not on Business: it invoices only shipped lines whose
C of C is signed on the floor's ledger; its invoices reach Business, with
the clients' POs, C of Cs and proof bundles, only through the one-way feed,
which is all the client API (on Business) answers from.

The intake takes the stations' shipped batches; the gathering takes the hub
services' own node logs (SMART-ID, ``smart apply``, the operator) from
``<state_dir>/ledger/``, so their entries are in the same verifiable log.
HandoffCentral indexes the job records stations handed off, from that log.

On Kubernetes these run in the hub Deployment (``smart hub run``); on one
machine ``smart up`` starts them after its servers are healthy, the same
way: from the settings' database URL, hub NATS URL and credentials, keys and
secrets directories and stations, never from the embedded floor. The ledger
tables are migrated as the database owner; the intake then works as the app
role, which may only INSERT and SELECT.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any

import nats
import psycopg
import structlog
from fastapi import APIRouter
from nats.aio.client import Client as NatsClient
from psycopg.conninfo import make_conninfo

from smart import settings as settings_
from smart.bus import hub_roles, messages, subjects
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles, handoff_central, migrations, reorders, streams, work
from smart.hub import means as means_service
from smart.hub import metrics as hub_metrics
from smart.hub.audit import index as audit_index
from smart.hub.audit import web as audit_web
from smart.hub.clients import store as clients_store
from smart.hub.compliance import approve_page
from smart.hub.compliance import index as compliance_index
from smart.hub.compliance import service as compliance_service
from smart.hub.gathering import HubNodeGathering, NodeLogShipping, register_shipped_nodes
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.maintenance import service as maintenance_service
from smart.hub.maintenance import store as maintenance_store
from smart.hub.pay import service as pay_service
from smart.hub.safety import incidents as safety_incidents
from smart.hub.safety import service as safety_service
from smart.hub.vault import database as vault_database
from smart.hub.vault import publish as vault_publish
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth, people
from smart.hub.web.status import FloorStatus, ServiceHealth, station_heard
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import ADMIN_KEY
from smart.secret_files import secret

log = structlog.get_logger("smart.hub.services")

#: The app role's password, generated on first use (or mounted) in the secrets directory.
APP_PASSWORD_FILE = "ledger-app.password"

#: Which hub runs which service (DESIGN's hub list; Education on the Vault, see above).
ROLE_SERVICES: dict[HubRole, tuple[str, ...]] = {
    # StandardsCentral, QACentral and InventoryHub sign and verify with SMART-ID's credentials, so they
    # run beside it. InventoryHub is on Business by issue 18, but it writes the lot records stations
    # judge by, and Business may write nothing that reaches a station (issue 22): see the README.
    # PolicyCentral (contract history, in force at, the approval page) signs with SMART-ID: the Vault's.
    HubRole.VAULT: ("smart-id", "means", "education", "peopleops", "policy", "hubquery"),
    HubRole.FLOOR: (
        "ledger-intake",
        "hub-node-gathering",
        "handoff-central",
        "reorder-board",
        "work",
        # These read the hub log, which the Floor holds; DESIGN puts compliance and audit on the Vault,
        # which would need the Vault's login to read the ledger tables (not granted yet).
        "compliance",
        "audit",
        "safety",
        "maintenance",
        # AI Central reads the hub log too; DESIGN puts it on the Vault (advice only, never a decision).
        "ai-central",
        # Pay judges shipped, certified lines from the floor's ledger; its invoices reach Business (and
        # the client API there) through the one-way feed, with the POs, C of Cs and proof bundles.
        "pay",
        "business-publisher",
        "hubquery",
        # The quality manager's home page: it reads the ledger's indexes and the services' schemas.
        "dashboard",
    ),
    HubRole.BUSINESS: ("business-feed", "client-api", "growth", "feedback", "hubquery"),
}

#: ``smart hub run --role …``: one of the three, or ``all`` (every service in one process, as before).
ROLES = ("all", *(role.value for role in HubRole))


def services_of(role: str) -> frozenset[str]:
    """The services ``role`` runs (``all``: every one)."""
    if role == "all":
        return frozenset(name for names in ROLE_SERVICES.values() for name in names)
    return frozenset(ROLE_SERVICES[HubRole(role)])


class HubServices:
    """The hub services of one role, started in order by :meth:`start`, from ``settings`` only."""

    def __init__(self, settings: settings_.Settings, *, role: str = "all") -> None:
        if role not in ROLES:
            raise ValueError(f"hub role {role!r} is not one of {', '.join(ROLES)}")
        self.settings = settings
        self.role = role
        self.services = services_of(role)
        #: Set by :class:`HubRoles`: the Vault's StandardsCentral, QACentral and InventoryHub wait
        #: until the Floor has made the ledger's app role they work as (and its traveler book).
        self.defer_means = False
        #: The Vault and Business ship their node logs to the Floor's intake (their volumes are their
        #: own); :class:`HubRoles` unsets it: on one machine the Floor gathers the shared files.
        self.ships_node_logs = True
        self.extensions: list[Any] = []
        #: The role's own database login, set by :meth:`start`.
        self.database_url_in_use = ""
        #: Set by :meth:`start`: the settings' database URL is this role's own login, not the owner's;
        #: the owner's work (:meth:`prepare`) was done beforehand (``smart hub migrate``), and every
        #: connection of this process is that one login.
        self.prepared = False
        #: The stations this hub takes ledgers from and publishes to.
        self.stations = list(settings.station_ids)
        self.hub_log: HubLog | None = None
        self.connection: NatsClient | None = None
        self.intake: LedgerIntake | None = None
        self._task: asyncio.Task[None] | None = None
        self.gathering_log: HubLog | None = None
        self.smartid: SmartId | None = None
        self.logins: Logins | None = None
        self._gathering: asyncio.Task[None] | None = None
        self.handoffs: handoff_central.HandoffCentral | None = None
        self._handoffs: asyncio.Task[None] | None = None
        self.reorders: reorders.ReorderBoard | None = None
        self._reorders: asyncio.Task[None] | None = None
        self.work: work.WorkServices | None = None
        self.compliance: compliance_service.ComplianceCentral | None = None
        self.safety: safety_service.SafetyCentral | None = None
        self.maintenance: maintenance_service.MaintenanceService | None = None
        self.means: means_service.MeansServices | None = None
        self.pay: pay_service.PayServices | None = None
        #: The floor's contract approver for the Vault's approval page; unset, the settings' one
        #: (:func:`smart.hub.compliance.approvers.for_settings`: the operator's namespace, else the
        #: embedded driver). ``smart up`` sets the embedded floor's.
        self.contract_approver: approve_page.Approver | None = None
        #: Each station's last heartbeat (when received, what it said), for ``/api/status``.
        self.heartbeats: dict[str, tuple[float, messages.StationHeartbeat]] = {}

    def owner_database_url(self) -> str:
        """The settings' database URL: the owner's, or (:attr:`prepared`) the role's own login."""
        return settings_.database_url(self.settings)

    def app_database_url(self) -> str:
        if self.prepared:  # signed in as the role's own login: it is the only one this process holds
            return self.owner_database_url()
        password = secret(self.settings.secrets_directory / APP_PASSWORD_FILE)
        return make_conninfo(self.owner_database_url(), user=hub_store.APP_ROLE, password=password)

    def runs(self, service: str) -> bool:
        return service in self.services

    def role_database_url(self) -> str:
        """This role's own PostgreSQL login (created as the owner if missing); ``all`` uses the app role."""
        if self.prepared:
            return self.owner_database_url()
        if self.role == "all":
            return self.app_database_url()
        return database_roles.ensure_login_role(
            self.owner_database_url(), HubRole(self.role), self.settings.secrets_directory
        )

    def nats_signin(self) -> dict[str, Any]:
        """This role's sign-in at the hub NATS, as ``nats.connect`` keywords (the hub asks everyone).

        A role's user signs in with the password in ``nats-hub-<role>.password`` (generated by
        ``smart up``, mounted on Kubernetes) and receives replies on its own inbox prefix; without
        the password the role refuses to start (no other user has its rights, nor should it borrow
        them). ``all`` signs in as the driver (``Settings.hub_nats_signin``).
        """
        if self.role == "all":
            return dict(self.settings.hub_nats_signin())
        role = HubRole(self.role)
        password_path = self.settings.secrets_directory / hub_roles.password_file(role)
        if not password_path.exists():
            raise RuntimeError(f"the {role.value} hub's NATS password is missing: {password_path}")
        return {
            "user": hub_roles.user_name(role),
            "password": password_path.read_text().strip(),
            "inbox_prefix": hub_roles.inbox_prefix(role),
        }

    async def connect_nats(self, name: str) -> NatsClient:
        """A connection to the hub's NATS as this role's user (or, for ``all``, the driver's)."""
        role = self.role

        async def refused(err: Exception) -> None:
            # A permissions violation is the server refusing this role's user something its code
            # asked: say which role and what, so a gap in hub_roles.permissions is seen, not guessed.
            log.warning(
                "hub.nats_error", role=role, connection=name, error=f"{type(err).__name__}: {err}"[:300]
            )

        return await nats.connect(
            self.settings.hub_nats_url(),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=refused,
            **self.nats_signin(),
        )

    @migrations.one_at_a_time  # the chart's role pods migrate at once: one after the other
    def prepare(self) -> None:
        """As the database owner (the settings' URL): what this role's services need made before they run.

        Every schema they use migrated, the role's login (with its password from the secrets
        directory) created and granted exactly those tables, its pages' sign-in grants, Grafana's
        read-only login. Idempotent. ``smart hub migrate --role …`` runs it alone (the chart's
        migration step, the only place the owner's secret is mounted); :meth:`start` runs it first
        when it is given the owner's URL (``smart up``, a single hub).
        """
        owner_url = self.owner_database_url()
        secrets_dir = self.settings.secrets_directory
        vault_database.migrate(owner_url)  # every role's pages sign in against the Vault's logins
        if self.runs("ledger-intake"):
            hub_store.migrate(owner_url, app_password=secret(secrets_dir / APP_PASSWORD_FILE))
            for migrate in (
                handoff_central.migrate,
                reorders.migrate,
                work.migrate,
                audit_index.migrate,
                maintenance_store.migrate,
                pay_service.migrate,
                compliance_index.migrate,
                safety_incidents.migrate,
            ):
                migrate(owner_url)
        if self.runs("means"):
            means_service.migrate(owner_url)  # as the app role: the single hub, and smart up's Vault
        if self.role != "all":
            role = HubRole(self.role)
            login = database_roles.DATABASE_ROLES[role]
            database_roles.ensure_login_role(owner_url, role, secrets_dir)
            database_roles.grant_sessions(owner_url, login)
            if role is HubRole.VAULT:
                vault_database.grant(owner_url, login)  # SMART-ID's tables, rows only
                means_service.migrate(owner_url, app_role=login)
                # What QACentral reads of the Floor's side must exist to be granted (idempotent).
                hub_store.migrate(owner_url)
                handoff_central.migrate(owner_url)
                reorders.migrate(owner_url)
                clients_store.migrate(owner_url)
                # PolicyCentral's history reads the stations' activations: the table is made here
                # too, so a Vault pod started before the Floor's serves it (its login may not make it).
                compliance_index.migrate(owner_url)
                database_roles.grant_vault_reads(owner_url)
        from smart.hub import role_services

        role_services.migrate(self, owner_url)
        if self.role == "all":  # each role's owner step too: the single hub's login is in all three
            for each in HubRole:
                HubServices(self.settings, role=each.value).prepare()
            database_roles.ensure_single_hub_role(owner_url, secrets_dir)
        database_roles.ensure_grafana_role(owner_url, secrets_dir)
        log.info("hub.prepared", role=self.role, login=self.role_login())

    def role_login(self) -> str:
        """The login this role runs as once prepared (``all``: the single hub's, in every role's)."""
        if self.role == "all":
            return database_roles.SINGLE_HUB_ROLE
        return database_roles.DATABASE_ROLES[HubRole(self.role)]

    def own_login_url(self) -> str:
        """As the owner, after :meth:`prepare`: the connection string of :meth:`role_login`."""
        if self.role == "all":
            return database_roles.ensure_single_hub_role(
                self.owner_database_url(), self.settings.secrets_directory
            )
        return self.role_database_url()

    async def start(self) -> None:
        url = self.owner_database_url()
        keys = KeyStore(self.settings.key_directory)
        login = await asyncio.to_thread(database_roles.login_of, url)
        self.prepared = login == self.role_login()
        if not self.prepared:  # given the owner's URL: do the owner's part first, here
            await asyncio.to_thread(self.prepare)
        log.info("hub.database_login", role=self.role, login=login, prepared=self.prepared)
        owner_url = url  # the owner's, or (prepared) the role's own: nothing below migrates
        self.connection = await self.connect_nats(f"smart-hub-{self.role}")
        self.database_url_in_use = await asyncio.to_thread(self.role_database_url)
        if self.runs("ledger-intake"):
            await self._start_floor(owner_url, keys)
            # The stations' rows of /api/status: the Floor (or the single hub) hears their heartbeats.
            await self.connection.subscribe(subjects.HEARTBEATS, cb=self._on_heartbeat)
        auth.use_shop_zone(self.settings.shop_zone)  # every page's times, in the shop's zone
        # Every role's pages sign in against the Vault's logins (one shop, one set of accounts), as
        # the sessions' own login role over a pool, never as the owner; prepared, as the role's
        # login, which is in the sessions group.
        if self.prepared:
            sessions_url = url
        else:
            sessions_url = await asyncio.to_thread(
                database_roles.ensure_sessions_role,
                owner_url,
                self.settings.secrets_directory,
                None if self.role == "all" else HubRole(self.role),
            )
        self.logins = await asyncio.to_thread(Logins, owner_url, sessions_url=sessions_url, migrate=False)
        if self.runs("smart-id"):
            self.smartid = await asyncio.to_thread(
                SmartId,
                owner_url,
                key=keys.signing_key(vault.CREDENTIAL_KEY),
                ledger=vault.SharedNodeLog(self.settings.state_dir / "ledger", keys),
                zone=self.settings.shop_zone,
                migrate=False,
            )
        if self.runs("means") and self.smartid is not None and not self.defer_means:
            await self._start_means(owner_url, keys)
        from smart.hub import role_services  # the role's own services (imports them only when started)

        self.extensions = await role_services.start(self, owner_url=owner_url, keys=keys)
        if self.runs("audit"):  # AuditCentral prints each shipment's C of C as it reaches the hub
            from smart.hub.audit import printing

            self.extensions.append(await printing.start(self, migrate=False))
        if self.ships_node_logs and not self.runs("ledger-intake"):  # a pod of its own: to the Floor
            shipping = NodeLogShipping(
                HubRole(self.role), self.settings.state_dir / "ledger", self.connection
            )
            self.extensions.append(shipping)

    async def start_means(self) -> None:
        """StandardsCentral, QACentral and InventoryHub, once deferred (see :attr:`defer_means`)."""
        if self.runs("means") and self.smartid is not None and self.means is None:
            await self._start_means(self.owner_database_url(), KeyStore(self.settings.key_directory))

    async def _start_means(self, owner_url: str, keys: KeyStore) -> None:
        """StandardsCentral, QACentral and InventoryHub, beside SMART-ID (whose credentials they verify)."""
        assert self.connection is not None and self.smartid is not None
        self.means = await asyncio.to_thread(
            means_service.MeansServices,
            self.app_database_url(),
            keys=keys,
            ledger_dir=self.settings.state_dir / "ledger",
            stations=self.stations,
            js=self.connection.jetstream(),
            smartid=self.smartid,
            travelers=self.work.travelers if self.work is not None else None,
            zone=self.settings.shop_zone,
        )
        self.means.start()

    async def _start_floor(self, owner_url: str, keys: KeyStore) -> None:
        assert self.connection is not None
        await streams.wait_for_ledger_stream(self.connection.jetstream())  # the operator makes it
        # Under `smart up` this machine is the administrator's: it holds (makes) the ledger-admin key,
        # which establishes the stations' keys; the hub services only read its public half.
        admin = keys.signing_key(ADMIN_KEY).verifying
        self.hub_log = await asyncio.to_thread(
            HubLog.connect,
            self.app_database_url(),
            key=keys.signing_key(hub_store.HUB_KEY),
            admin=admin,
        )
        stations = self.stations
        await asyncio.to_thread(register_stations, self.hub_log, keys, stations)
        await asyncio.to_thread(register_shipped_nodes, self.hub_log, keys)  # the operator's node
        self.intake = LedgerIntake(self.connection, self.hub_log, stations=stations)
        self._task = asyncio.create_task(self.intake.run(), name="ledger-intake")
        # A connection of its own: the gathering runs in a worker thread beside the intake.
        self.gathering_log = await asyncio.to_thread(
            HubLog.connect,
            self.app_database_url(),
            key=keys.signing_key(hub_store.HUB_KEY),
            admin=admin,
        )
        gathering = HubNodeGathering(self.settings.state_dir / "ledger", self.gathering_log, keys)
        self._gathering = asyncio.create_task(self._gather(gathering), name="hub-node-gathering")
        self.handoffs = await asyncio.to_thread(
            handoff_central.HandoffCentral.connect, self.app_database_url()
        )
        self._handoffs = asyncio.create_task(self.handoffs.run(), name="handoff-central")
        self.reorders = await asyncio.to_thread(reorders.ReorderBoard.connect, self.app_database_url())
        self._reorders = asyncio.create_task(self.reorders.run(), name="reorder-board")
        self.work = await asyncio.to_thread(
            work.WorkServices,
            self.app_database_url(),
            keys=keys,
            ledger_dir=self.settings.state_dir / "ledger",
            stations=stations,
            js=self.connection.jetstream(),
        )
        self.work.start()
        self.compliance = compliance_service.ComplianceCentral(
            owner_url, self.app_database_url(), self.connection, migrate=False
        )
        await self.compliance.start()  # ComplianceCentral and PolicyCentral: refusals, activations, flags
        self.safety = safety_service.SafetyCentral(
            owner_url,
            self.app_database_url(),
            ledger_dir=self.settings.state_dir / "ledger",
            keys=keys,
            migrate=False,
        )
        await self.safety.start()
        self.maintenance = maintenance_service.MaintenanceService(
            self.app_database_url(),
            keys=keys,
            ledger_dir=self.settings.state_dir / "ledger",
            stations=stations,
            js=self.connection.jetstream(),
            contracts=self.settings.contracts_dir,
            zone=self.settings.shop_zone,
        )
        self.maintenance.start()
        if self.runs("pay"):
            self.pay = await asyncio.to_thread(
                pay_service.PayServices,
                self.app_database_url(),
                keys=keys,
                ledger_dir=self.settings.state_dir / "ledger",
            )
            self.pay.start()

    def routers(self, guard: auth.Guard | None = None, *, sign_in: bool = True) -> list[APIRouter]:
        """This role's pages: SMART-ID's (Vault), the jobs, reorders and work (Floor), its own services'."""
        assert self.logins is not None
        guard = guard or auth.Guard(self.logins)
        found: list[APIRouter] = [auth.router(self.logins)] if sign_in else []
        if self.smartid is not None:
            publish = vault_publish.publisher(
                self.smartid,
                self.settings.hub_nats_url(),
                self.stations,
                signin=self.nats_signin(),
            )
            found.append(people.router(self.smartid, guard, publish=publish))
        if self.runs("handoff-central"):
            found += [
                handoff_central.router(self.app_database_url(), guard),
                reorders.router(self.app_database_url(), guard),
            ]
        if self.work is not None:
            found += self.work.routers(guard)
        if self.runs("audit"):
            found.append(
                audit_web.router(self.app_database_url(), guard, **audit_web.audit_keys(self.settings))
            )
        if self.compliance is not None:
            found.append(self.compliance.router(guard))
        if self.safety is not None:
            found.append(self.safety.router(guard))
        if self.maintenance is not None:
            found += self.maintenance.routers(guard)
        if self.means is not None:
            found += self.means.routers(guard)
        if self.pay is not None:
            found += self.pay.routers(guard)
        for extension in self.extensions:
            found += extension.routers(guard)
        return found

    async def metrics_text(self) -> bytes:
        """This role's Prometheus figures for its web app's ``/metrics``: the Floor's ledger intake,
        the Vault's NCRs open at QACentral (read now)."""
        text = b"" if self.intake is None else await self.intake.metrics_text()
        if self.means is not None:
            try:
                ncrs = await asyncio.to_thread(self.means.qa.ncrs, open_only=True)
            except Exception as err:  # the database away: the other figures still go out
                structlog.get_logger("smart.hub.services").warning(
                    "hub.metrics_ncrs_unread", error=type(err).__name__
                )
            else:
                counts = collections.Counter(ncr.station for ncr in ncrs)
                text += hub_metrics.ncrs_open_text(self.stations, counts)
        return text

    async def status(self) -> FloorStatus:
        """The hub's own parts as the status page shows them: its database and its NATS, probed now."""
        checked = time.time()
        database = ServiceHealth(name="postgresql", kind="database", healthy=True, state="running")
        try:
            await asyncio.wait_for(asyncio.to_thread(_probe_database, self.database_url_in_use), timeout=2)
        except Exception as err:  # down, refusing, slow: the page says so
            database = database.model_copy(
                update={"healthy": False, "state": "unreachable", "detail": f"{type(err).__name__}: {err}"}
            )
        connected = self.connection is not None and self.connection.is_connected
        hub_nats = ServiceHealth(
            name="nats-hub",
            kind="hub-nats",
            healthy=connected,
            state="running" if connected else "unreachable",
            detail="" if connected else f"not connected to {self.settings.hub_nats_url()}",
        )
        services = [database, hub_nats]
        if self.runs("ledger-intake"):  # the hub that hears the stations lists them, heard or not
            offline_after_s = self.settings.station_offline_after_s
            services += [
                station_heard(s, self.heartbeats.get(s), offline_after_s=offline_after_s, now=checked)
                for s in self.stations
            ]
        return FloorStatus(healthy=all(s.healthy for s in services), services=services, checked_at=checked)

    async def _on_heartbeat(self, message: Any) -> None:
        try:
            heartbeat = messages.read_heartbeat(message.subject, message.data)
        except messages.MessageError:
            return  # not a heartbeat, or one station speaking for another
        if heartbeat.station in self.stations:
            self.heartbeats[heartbeat.station] = (time.time(), heartbeat)

    async def _gather(self, gathering: HubNodeGathering, every_s: float = 2.0) -> None:
        while True:
            await asyncio.to_thread(gathering.gather_once)
            await asyncio.sleep(every_s)

    async def stop(self) -> None:
        for extension in reversed(self.extensions):
            await extension.stop()
        self.extensions = []
        if self.maintenance is not None:
            await self.maintenance.stop()
        if self.safety is not None:
            await self.safety.stop()
        if self.compliance is not None:
            await self.compliance.stop()
        if self.means is not None:
            await self.means.stop()
        if self.pay is not None:
            await self.pay.stop()
        if self.work is not None:
            await self.work.stop()
        for task in (self._reorders, self._handoffs, self._gathering, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.handoffs is not None:
            self.handoffs.close()
        if self.reorders is not None:
            self.reorders.close()
        if self.gathering_log is not None:
            self.gathering_log.close()
        if self.intake is not None:
            self.intake.close()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
        if self.hub_log is not None:
            self.hub_log.close()
        if self.logins is not None:
            self.logins.close()


class HubRoles:
    """The three hub roles on one machine (``smart up``): each its own services, NATS user and database role.

    Started Vault, Floor, Business (SMART-ID before the work that names people; Business last, once
    the feed's streams exist). The web app is one, signed in against the Vault's logins, with every
    role's pages; each page's service still works over its own role's connections.
    """

    def __init__(self, settings: settings_.Settings) -> None:
        self.settings = settings
        self.roles = {role: HubServices(settings, role=role.value) for role in HubRole}
        self.roles[HubRole.VAULT].defer_means = True
        for services in self.roles.values():  # one state directory: the Floor gathers every node log
            services.ships_node_logs = False
        self.stations = list(settings.station_ids)

    @property
    def vault(self) -> HubServices:
        return self.roles[HubRole.VAULT]

    @property
    def floor(self) -> HubServices:
        return self.roles[HubRole.FLOOR]

    @property
    def business(self) -> HubServices:
        return self.roles[HubRole.BUSINESS]

    @property
    def smartid(self) -> SmartId | None:
        return self.vault.smartid

    @property
    def work(self) -> work.WorkServices | None:
        return self.floor.work

    @property
    def maintenance(self) -> maintenance_service.MaintenanceService | None:
        return self.floor.maintenance

    @property
    def means(self) -> means_service.MeansServices | None:
        return self.vault.means

    @property
    def logins(self) -> Logins | None:
        return self.vault.logins

    async def start(self) -> None:
        started: list[HubServices] = []
        try:
            for role in (HubRole.VAULT, HubRole.FLOOR, HubRole.BUSINESS):
                started.append(self.roles[role])
                await self.roles[role].start()
            await self.vault.start_means()
            if self.vault.means is not None and self.floor.work is not None:
                # The Vault started first: StandardsCentral's approved revisions also go into the
                # Floor's traveler book, so routes and releases name the revision in force.
                self.vault.means.standards_publisher.travelers = self.floor.work.travelers
            for extension in self.floor.extensions:  # one machine: the dashboard reads SMART-ID's people too
                if hasattr(extension, "vault_url") and extension.vault_url is None:
                    extension.vault_url = self.vault.owner_database_url()
        except BaseException:
            for services in reversed(started):
                await services.stop()
            raise

    def routers(self) -> list[APIRouter]:
        assert self.vault.logins is not None
        guard = auth.Guard(self.vault.logins)
        found = [auth.router(self.vault.logins)]
        for role in (HubRole.VAULT, HubRole.FLOOR, HubRole.BUSINESS):
            found += self.roles[role].routers(guard, sign_in=False)
        return found

    async def status(self) -> FloorStatus:
        return await self.floor.status()

    async def metrics_text(self) -> bytes:
        """Every role's Prometheus figures (the Floor's ledger intake), for the one web app's ``/metrics``."""
        return b"".join([await self.roles[role].metrics_text() for role in HubRole])

    async def stop(self) -> None:
        for role in (HubRole.BUSINESS, HubRole.FLOOR, HubRole.VAULT):
            await self.roles[role].stop()


def _probe_database(url: str) -> None:
    with psycopg.connect(url, connect_timeout=2) as connection:
        connection.execute("SELECT 1")
