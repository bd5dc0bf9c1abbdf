"""The station module framework: each module's manifest and the one interface every module implements.

A module is a folder under ``smart/modules/`` with a ``manifest.yaml`` (what
it is, the rule kinds it enforces, the verbs it answers, its hardware, the
stations that may run it, its resource requests) and a ``module.py`` with
one :class:`StationModule` subclass. The operator builds each module's
DaemonSet from the manifest; the node supervisor runs the same classes
in-process. Modules never import each other: they answer and publish on the
station's own subjects, ``station.<id>.<module>.<verb>``, and every decision
they take goes to the node ledger with the contract revisions and reasons.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from smart.contracts import engine
from smart.contracts import facts as f

if TYPE_CHECKING:
    from fastapi import APIRouter

    from smart import ledger
    from smart.node.enforcement import StationDecision

MODULES_DIR = Path(__file__).parent
DEFAULT_IMAGE = "ghcr.io/smart-aero/smart-station:latest"
_EMPTY: Mapping[str, str] = MappingProxyType({})
_DEFAULT_REQUESTS: Mapping[str, str] = MappingProxyType({"cpu": "10m", "memory": "32Mi"})
_DEFAULT_LIMITS: Mapping[str, str] = MappingProxyType({"memory": "96Mi"})


class ManifestError(ValueError):
    """A module's manifest.yaml is missing a field or has a wrong one; the message names file and field."""


@dataclass(frozen=True, slots=True)
class ModuleManifest:
    """What a module is and where it may run, as its ``manifest.yaml`` says."""

    name: str
    summary: str
    #: Rule kinds (``kind`` of :mod:`smart.contracts.rules`) this module enforces.
    rule_kinds: tuple[str, ...] = ()
    #: Verbs it answers on ``station.<id>.<name>.<verb>``.
    subjects: tuple[str, ...] = ()
    #: Hardware it drives when present (camera, gpio, microphone…); none is required to decide.
    hardware: tuple[str, ...] = ()
    #: Station labels that must hold for a station to run the module (empty: any station).
    station_labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    #: Kubernetes resource requests and limits of its container.
    requests: Mapping[str, str] = field(default_factory=lambda: _DEFAULT_REQUESTS)
    limits: Mapping[str, str] = field(default_factory=lambda: _DEFAULT_LIMITS)
    image: str = DEFAULT_IMAGE
    #: Runs on every station that may run it, whether or not the contracts in force name it
    #: (the station's own infrastructure: its contract store, hand-off, alerts, status, scans, questions).
    every_station: bool = False

    def may_run_on(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.station_labels.items())


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ManifestError(f"{where}: expected a list of strings")
    return tuple(raw)


def _mapping(raw: Any, where: str) -> Mapping[str, str]:
    if raw is None:
        return _EMPTY
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ManifestError(f"{where}: expected a mapping of strings to strings")
    return MappingProxyType(dict(raw))


def read_manifest(path: Path) -> ModuleManifest:
    """One ``manifest.yaml``; a bad one raises :class:`ManifestError` naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ManifestError(f"{path}: {err}") from err
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a mapping at the top")
    known = {
        "name",
        "summary",
        "ruleKinds",
        "subjects",
        "hardware",
        "stationLabels",
        "resources",
        "image",
        "everyStation",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        expected = ", ".join(sorted(known))
        raise ManifestError(f"{path}: unknown field(s) {', '.join(unknown)}; expected {expected}")
    for required in ("name", "summary"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise ManifestError(f"{path}: {required} is required and must be a non-empty string")
    if raw["name"] != path.parent.name.replace("_", "-"):
        raise ManifestError(f"{path}: name {raw['name']!r} does not match its folder {path.parent.name!r}")
    resources = raw.get("resources") or {}
    if not isinstance(resources, dict):
        raise ManifestError(f"{path}: resources: expected a mapping with requests and limits")
    every_station = raw.get("everyStation", False)
    if not isinstance(every_station, bool):
        raise ManifestError(f"{path}: everyStation: expected true or false, got {every_station!r}")
    return ModuleManifest(
        name=raw["name"],
        summary=raw["summary"],
        rule_kinds=_strings(raw.get("ruleKinds"), f"{path}: ruleKinds"),
        subjects=_strings(raw.get("subjects"), f"{path}: subjects"),
        hardware=_strings(raw.get("hardware"), f"{path}: hardware"),
        station_labels=_mapping(raw.get("stationLabels"), f"{path}: stationLabels"),
        requests=_mapping(resources.get("requests"), f"{path}: resources.requests") or _DEFAULT_REQUESTS,
        limits=_mapping(resources.get("limits"), f"{path}: resources.limits") or _DEFAULT_LIMITS,
        image=str(raw.get("image") or DEFAULT_IMAGE),
        every_station=every_station,
    )


def load_manifests(root: Path = MODULES_DIR) -> Mapping[str, ModuleManifest]:
    """Every module folder's manifest, by module name."""
    found: dict[str, ModuleManifest] = {}
    for path in sorted(root.glob("*/manifest.yaml")):
        manifest = read_manifest(path)
        found[manifest.name] = manifest
    return MappingProxyType(found)


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
