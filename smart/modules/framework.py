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
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from smart.contracts import catalog, engine
from smart.contracts import facts as f

if TYPE_CHECKING:
    from fastapi import APIRouter

    from smart import ledger
    from smart.node.enforcement import StationDecision

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


class StationContext(Protocol):
    """What a module may use of its station: local facts, the contracts in force, the ledger, the bus."""

    station: str

    def facts(self) -> f.Facts:
        """The station's local knowledge now (people, equipment, checks, lots, PO lines, jobs, procedures)."""

    def judge(self, event: f.Event, *, module: str) -> StationDecision:
        """The active revisions' verdict on ``event``, from the rules whose kind ``module`` enforces."""

    def record(self, *, kind: str, subject: str, data: Mapping[str, Any], actor: str) -> ledger.Entry:
        """Append durably to the station's ledger, naming the revisions in force."""

    async def publish(self, subject: str, body: Mapping[str, Any]) -> None:
        """Publish on the station's own leaf (alerts, status, signals to the hub)."""


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
