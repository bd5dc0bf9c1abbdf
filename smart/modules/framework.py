"""The station module framework: each module's manifest and the one interface every module implements.

A module is a folder under ``smart/modules/`` with a ``manifest.yaml`` (what
it is, the rule kinds it enforces, the verbs it answers, its hardware, the
stations that may run it, its resource requests) and a ``module.py`` with
one :class:`StationModule` subclass. The operator builds each module's
DaemonSet from the manifest; the node supervisor runs the same classes
in-process. Modules never import each other: they answer and publish on the
station's own subjects, ``station.<id>.<module>.<verb>``, and every decision
they take goes to the node ledger with the contract revisions and reasons.
The manifest reader lives with the contracts (:mod:`smart.contracts.catalog`),
which need it and must not depend on this package; it is re-exported here.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from smart.contracts import catalog, engine
from smart.contracts import facts as f

if TYPE_CHECKING:
    from fastapi import APIRouter

    from smart import ledger
    from smart.contracts.decisions import StationDecision

DEFAULT_IMAGE = catalog.DEFAULT_IMAGE
MODULES_DIR = catalog.MODULES_DIR
ManifestError = catalog.ManifestError
ModuleManifest = catalog.ModuleManifest
read_manifest = catalog.read_manifest
load_manifests = catalog.load_manifests


def subject(station: str, module: str, verb: str) -> str:
    """The subject a module answers ``verb`` on at ``station``."""
    return f"station.{station}.{module}.{verb}"


@dataclass(frozen=True, slots=True)
class ModuleEvent:
    """What reaches a module: the verb it was asked on, the typed event, and module-specific extras."""

    verb: str
    event: f.Event
    body: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ModuleDecision:
    """A module's answer: the outcome, every reason, the revisions judged against, and what it did."""

    module: str
    outcome: engine.Outcome
    reasons: tuple[engine.Reason, ...] = ()
    revisions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: What the module did beside deciding (an NCR opened, a reorder signal, a counter), for the record.
    effects: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def allowed(self) -> bool:
        return self.outcome != "deny"

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "outcome": self.outcome,
            "revisions": dict(self.revisions),
            "reasons": [reason.to_json() for reason in self.reasons],
            "effects": dict(self.effects),
        }


@dataclass(frozen=True, slots=True)
class HeldRevision:
    """A contract revision in force at the station: its verified envelope and since when."""

    contract: str
    revision: str
    envelope: bytes
    activated_at: str


@dataclass(frozen=True, slots=True)
class RevisionChange:
    """One change of a contract's active revision (``revision`` None: retired), as the history shows it."""

    contract: str
    revision: str | None
    previous: str | None
    at: str


class StationContext(Protocol):
    """The station's ports: all a module may use of its station, the same in-process and across processes.

    In-process (``smart node run``, the systemd fallback, ``smart up``) they are calls into the
    station runtime; in a module's own process (``smart module run``) each is a request on the
    station's leaf to the node agent, which stays the node log's one writer. A module never
    reaches past them (no node internals, no other module).
    """

    @property
    def station(self) -> str:
        """The station's id."""

    @property
    def data_dir(self) -> Path:
        """The station's own directory on its node (the folder of scanned images lives there)."""

    # -- the records (read; writes go with a ledger entry) --------------------------------------

    async def facts(self) -> f.Facts:
        """The station's local knowledge now (people, equipment, checks, lots, PO lines, jobs, procedures)."""

    async def held(self, kind: str, key: str) -> Any | None:
        """The record of ``kind`` under ``key`` now, if any."""

    async def keep(self, kind: str, record: Any, *, actor: str) -> None:
        """Store ``record`` (a facts value of ``kind``) and record it on the ledger, durably."""

    # -- the active revisions -----------------------------------------------------------------

    async def judge(self, event: f.Event, *, module: str) -> StationDecision:
        """The active revisions' verdict on ``event``, from the rules whose kind ``module`` enforces."""

    async def judge_kinds(self, event: f.Event, *, kinds: Collection[str]) -> StationDecision:
        """The active revisions' verdict on ``event`` by the rules of ``kinds`` only."""

    async def active_revisions(self) -> list[HeldRevision]:
        """Each contract's revision in force and since when."""

    async def revision_history(self, contract: str | None = None) -> list[RevisionChange]:
        """Each change of a contract's (or every contract's) active revision, oldest first."""

    async def envelope(self, contract: str, revision: str) -> bytes | None:
        """The verified envelope of one revision the station has held, if it still has it."""

    # -- the node ledger ----------------------------------------------------------------------

    async def record(
        self,
        *,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        revisions: Mapping[str, str] | None = None,
    ) -> ledger.Entry:
        """Append to the station's ledger, naming the revisions in force; returns once durable."""

    async def ledger_size(self) -> int:
        """How many entries the station's ledger holds."""

    async def entries(self, start: int, stop: int | None = None) -> list[ledger.Entry]:
        """The ledger's entries with ``start <= node_seq < stop``, in order."""

    async def shipped_seq(self) -> int:
        """The last ``node_seq`` the hub has acknowledged (-1 before the first)."""

    async def jobs_served_by(self, equipment: str, *, since: datetime | None) -> list[str]:
        """Jobs whose allowed decisions named ``equipment`` at or after ``since``, oldest first."""

    # -- badges -------------------------------------------------------------------------------

    async def badged_in(self) -> str | None:
        """The badge the job machine let in and that is at the station now, if any (a disposition
        is made by that person, never by a name in a request)."""

    async def badge_refusals(self, badge: str | None, at: datetime) -> tuple[engine.Reason, ...]:
        """Why ``badge``'s SMART-ID signed access credential fails here at ``at`` (none: it passes).

        A station that holds no SMART-ID keys yet judges badges by their records only: none.
        """

    # -- the bus (alerts, status, the job machine) --------------------------------------------

    async def publish(self, subject: str, body: Mapping[str, Any]) -> None:
        """Publish on the station's own leaf (alerts, status, signals to the hub)."""

    async def request(self, subject: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A request on the station's own leaf (a module asking the job machine, as a kiosk would)."""


class StationModule(abc.ABC):
    """One module at one station. Subclasses set ``name`` and implement :meth:`handle`."""

    name: str

    def __init__(self, station: StationContext, manifest: ModuleManifest) -> None:
        self.station = station
        self.manifest = manifest

    @abc.abstractmethod
    async def handle(self, event: ModuleEvent) -> ModuleDecision:
        """Decide on ``event``; the runner records the decision on the ledger and replies with it."""

    def routes(self) -> APIRouter | None:
        """Web routes the station UI mounts under ``/modules/<name>/``; none by default."""
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open hardware or background work; nothing by default."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release hardware (an interlock de-energises here); nothing by default."""
