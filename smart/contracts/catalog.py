"""The station modules a contract may ask for, and which stations may run each.

A module's manifest says what it is and where it may run (logistics only on
a station labelled for shipping); the reconcile core reads this to build one
workload per module. Until the modules issue gives each module its folder
and ``manifest.yaml`` under ``smart/modules/``, the manifests are this
table of data; the shape (:class:`ModuleManifest`) is the one those files
will have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from smart.contracts.models import ROLE_LABEL


@dataclass(frozen=True, slots=True)
class ModuleManifest:
    name: str
    summary: str
    #: Station labels that must hold for a station to run the module (empty: any station).
    station_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    image: str = "ghcr.io/smart-aero/smart-station:latest"

    def may_run_on(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.station_labels.items())


def _m(name: str, summary: str, **labels: str) -> ModuleManifest:
    return ModuleManifest(name, summary, MappingProxyType(dict(labels)))


MODULES: Mapping[str, ModuleManifest] = MappingProxyType(
    {
        module.name: module
        for module in (
            _m("gatekeeper", "inbound: may this person, part and PO run this process here now"),
            _m("guardian", "outbound: is the job record complete and within limits before release"),
            _m("policy-node-storage", "node-local contract store and its history"),
            _m("info-broadcast", "public status board"),
            _m("alert-broadcast", "stack light, buzzer, hub alerts"),
            _m("handoff", "job records and ledger to the hub, resumable"),
            _m("vision", "codes, part and traveler validation, PPE from camera frames"),
            _m("node-query", "offline voice questions answered from the local store"),
            _m("qa", "measurements against limits, SPC"),
            _m("inventory", "consumables, lots, shelf life"),
            _m("maintenance", "equipment checks, calibration due, usage counters"),
            _m("safety", "PPE, e-stop, hazard interlocks"),
            _m("logistics", "shipping and receiving", **{ROLE_LABEL: "shipping"}),
            _m("compliance", "the contract's process rules at point of operation"),
            _m("standards", "which revision of which spec applies, and its limits"),
        )
    }
)
