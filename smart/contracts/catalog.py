"""The station modules a contract may ask for, and which stations may run each.

Each module says what it is and where it may run in its own
``smart/modules/<name>/manifest.yaml`` (logistics only on a station labelled
for shipping); this is those manifests, read once, by module name. Semantics
checks a contract's modules against it, bundles keep only the modules a
station may run, and the reconcile core and the operator build one workload
per module from it. Adding a module means adding its folder, never editing
this file.

The manifests are read here, not by :mod:`smart.modules.framework` (which
re-exports this reader): the contracts pillar reads the modules' manifest
files as data and never imports the modules package, which depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

__all__ = ["MODULES", "ManifestError", "ModuleManifest", "load_manifests", "read_manifest"]

MODULES_DIR = Path(__file__).parents[1] / "modules"
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


MODULES: Mapping[str, ModuleManifest] = load_manifests()
