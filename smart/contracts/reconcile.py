"""The reconcile core: contract → validate → compile per station → sign → KV → workloads → ledger.

Both drivers call these functions and nothing else does their work: the kopf
operator on Kubernetes (DaemonSets as workloads) and the embedded driver of
``smart apply`` / ``smart up`` (module processes). The core is level-based:
given a contract and the stations that exist, it makes the KV bucket hold
exactly the bundles that should be there, writes a ledger entry for every
bundle it puts (``contract.deployed``) or removes (``contract.retired``), and
computes the module workloads all contracts together need.

Validation comes first and touches nothing: an invalid contract raises
:class:`~smart.contracts.semantics.ContractInvalid` and the revisions
stations hold stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import structlog

from smart import ledger
from smart.contracts import bundle, catalog, semantics
from smart.contracts.models import SmartContract, Station
from smart.keys import SigningKey

log = structlog.get_logger("smart.contracts")

ACTOR = "smart-operator"
#: Reason of a deploy's warning: a module the contract asks for may not run on a station it selects.
MODULE_NOT_PLACED = "ModuleNotPlaced"


class BundleStore(Protocol):
    """Where signed bundles go (the KV bucket stations mirror)."""

    async def put(self, station: str, contract: str, envelope: bytes) -> None: ...

    async def delete(self, station: str, contract: str) -> None: ...

    async def revisions(self, contract: str) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a deploy did: the revision each selected station now holds, and what changed."""

    contract: str
    revisions: Mapping[str, str]
    desired: int
    changed: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    bundles: tuple[bundle.SignedBundle, ...] = field(default=(), repr=False)
    #: Modules the contract asks for → selected stations their manifest does not let them run on.
    unplaced: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def synced(self) -> int:
        return len(self.revisions)

    @property
    def warnings(self) -> tuple[str, ...]:
        """One message per module left off some selected stations (reason :data:`MODULE_NOT_PLACED`)."""
        found = []
        for module, stations in self.unplaced.items():
            labels = catalog.MODULES[module].station_labels
            needs = ", ".join(f"{key}={value}" for key, value in labels.items())
            found.append(f"module {module} not placed on {', '.join(stations)}: it runs only where {needs}")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class Workload:
    """One module's workload: the stations that run it and the contracts that ask for it."""

    module: str
    image: str
    stations: tuple[str, ...]
    node_selectors: tuple[Mapping[str, str], ...]
    contracts: tuple[str, ...]
    #: From the module's manifest: container resource requests and limits, and the hardware it drives.
    requests: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    limits: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    hardware: tuple[str, ...] = ()


def selected_stations(contract: SmartContract, stations: Sequence[Station]) -> list[Station]:
    chosen = [s for s in stations if contract.spec.station_selector.matches(s.labels)]
    return sorted(chosen, key=lambda s: s.spec.station_id)


def unplaced_modules(contract: SmartContract, stations: Sequence[Station]) -> dict[str, tuple[str, ...]]:
    """The contract's known modules whose manifest refuses some selected stations, with those stations."""
    chosen = selected_stations(contract, stations)
    found: dict[str, tuple[str, ...]] = {}
    for module in sorted(set(contract.spec.modules) & set(catalog.MODULES)):
        refused = tuple(s.spec.station_id for s in chosen if not catalog.MODULES[module].may_run_on(s.labels))
        if refused:
            found[module] = refused
    return found


def compile_signed(
    contract: SmartContract, stations: Sequence[Station], key: SigningKey
) -> list[bundle.SignedBundle]:
    """Validate, then compile and sign one bundle per selected station (no I/O)."""
    semantics.check(contract.metadata.name, contract.spec)
    return [
        bundle.sign(bundle.compile_bundle(contract, s), key) for s in selected_stations(contract, stations)
    ]


async def deploy(
    contract: SmartContract,
    stations: Sequence[Station],
    *,
    key: SigningKey,
    store: BundleStore,
    log_: ledger.NodeLog | None,
    actor: str = ACTOR,
) -> Deployment:
    """Make the bucket hold this contract's bundles for exactly the stations it selects."""
    name = contract.metadata.name
    signed = compile_signed(contract, stations, key)
    held = await store.revisions(name)
    changed: list[str] = []
    for item in signed:
        if held.get(item.station) == item.revision:
            continue
        await store.put(item.station, name, item.envelope)
        changed.append(item.station)
        if log_ is not None:
            log_.append(
                kind="contract.deployed",
                subject=f"station/{item.station}",
                data={
                    "contract": name,
                    "station": item.station,
                    "revision": item.revision,
                    "previous": held.get(item.station),
                    "enforcement": contract.spec.enforcement,
                },
                actor=actor,
                contract=item.revision,
            )
        log.info("contract deployed", contract=name, station=item.station, revision=item.short_revision)
    wanted = {item.station for item in signed}
    retired = sorted(station for station in held if station not in wanted)
    await _retire(name, {s: held[s] for s in retired}, store=store, log_=log_, actor=actor)
    deployment = Deployment(
        contract=name,
        revisions={item.station: item.revision for item in signed},
        desired=len(signed),
        changed=tuple(changed),
        retired=tuple(retired),
        bundles=tuple(signed),
        unplaced=MappingProxyType(unplaced_modules(contract, stations)),
    )
    for warning in deployment.warnings:
        log.warning("module not placed", contract=name, reason=MODULE_NOT_PLACED, detail=warning)
    return deployment


async def retire(
    contract: str, *, store: BundleStore, log_: ledger.NodeLog | None, actor: str = ACTOR
) -> list[str]:
    """Remove every bundle of ``contract`` from the bucket; returns the stations it left."""
    held = await store.revisions(contract)
    await _retire(contract, held, store=store, log_=log_, actor=actor)
    return sorted(held)


async def _retire(
    contract: str, held: Mapping[str, str], *, store: BundleStore, log_: ledger.NodeLog | None, actor: str
) -> None:
    for station, revision in sorted(held.items()):
        await store.delete(station, contract)
        if log_ is not None:
            log_.append(
                kind="contract.retired",
                subject=f"station/{station}",
                data={"contract": contract, "station": station, "revision": revision},
                actor=actor,
                contract=revision,
            )
        log.info("contract retired", contract=contract, station=station, revision=revision[:12])


def workloads(contracts: Sequence[SmartContract], stations: Sequence[Station]) -> list[Workload]:
    """The module workloads all contracts together need, one per module, in a stable order.

    A module runs on a station when some contract selecting that station lists it and the
    module's manifest allows that station (logistics only where the role is shipping). Modules
    whose manifest says ``everyStation`` (the contract store, handoff, alerts, status board,
    vision, questions) run on every station some contract selects, as the station runtime runs
    them in-process.
    """
    by_module: dict[str, dict[str, Station]] = {}
    owners: dict[str, set[str]] = {}
    every = [m.name for m in catalog.MODULES.values() if m.every_station]
    for contract in contracts:  # a degraded contract keeps its workloads: its previous revision still runs
        for station in selected_stations(contract, stations):
            station_wide = [m for m in every if catalog.MODULES[m].may_run_on(station.labels)]
            for module in dict.fromkeys([*bundle.modules_for(contract, station), *station_wide]):
                by_module.setdefault(module, {})[station.spec.station_id] = station
                owners.setdefault(module, set()).add(contract.metadata.name)
    result = []
    for module in sorted(by_module):
        chosen = [by_module[module][sid] for sid in sorted(by_module[module])]
        manifest = catalog.MODULES[module]
        result.append(
            Workload(
                module=module,
                image=manifest.image,
                stations=tuple(s.spec.station_id for s in chosen),
                node_selectors=tuple(dict(sorted(s.spec.node_selector.items())) for s in chosen),
                contracts=tuple(sorted(owners[module])),
                requests=manifest.requests,
                limits=manifest.limits,
                hardware=manifest.hardware,
            )
        )
    return result
