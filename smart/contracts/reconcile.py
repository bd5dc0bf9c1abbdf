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

Then the two-person gate (:mod:`smart.contracts.approval`), when a driver passes its approval
store: a valid revision nobody has approved yet is held back (status ``PendingApproval``, naming
who must approve, ``contract.submitted`` on the ledger) and stations keep what they hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, Protocol

import structlog

from smart import ledger
from smart.contracts import approval, bundle, catalog, semantics
from smart.contracts.models import Condition, SmartContract, SmartContractStatus, Station
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
        return _warnings(self.unplaced)


def _warnings(unplaced: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    found = []
    for module, stations in unplaced.items():
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


@dataclass(frozen=True, slots=True)
class Planned:
    """One contract compiled for the stations it selects, before anything is distributed.

    ``invalid`` names what is wrong with a contract that cannot be compiled: it is degraded,
    nothing of it is distributed, and the revisions stations hold stay active.
    """

    contract: SmartContract
    bundles: tuple[bundle.SignedBundle, ...] = ()
    unplaced: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    invalid: str | None = None
    #: The two-person gate's word, when the driver keeps approvals (None: no gate, e.g. a bench).
    verdict: approval.Verdict | None = None

    @property
    def name(self) -> str:
        return self.contract.metadata.name

    @property
    def held_back(self) -> bool:
        """Valid, but waiting for a second person's approval: nothing of it goes to stations."""
        return self.invalid is None and self.verdict is not None and not self.verdict.allowed

    @property
    def revisions(self) -> dict[str, str]:
        return {item.station: item.revision for item in self.bundles}

    @property
    def warnings(self) -> tuple[str, ...]:
        return _warnings(self.unplaced)


def plan(contract: SmartContract, stations: Sequence[Station], key: SigningKey) -> Planned:
    """Compile and sign ``contract`` for its stations, or say why it is invalid (no I/O)."""
    try:
        signed = compile_signed(contract, stations, key)
    except semantics.ContractInvalid as err:
        return Planned(contract, invalid=str(err))
    return Planned(contract, tuple(signed), MappingProxyType(unplaced_modules(contract, stations)))


#: Writes what the cluster (or the embedded floor's store) should show, before any bundle goes out.
BeforeDistribution = Callable[[Sequence[Planned]], Awaitable[None]]


async def deploy_all(
    contracts: Sequence[SmartContract],
    stations: Sequence[Station],
    *,
    key: SigningKey,
    store: BundleStore,
    log_: ledger.NodeLog | None,
    actor: str = ACTOR,
    before: BeforeDistribution | None = None,
    approvals: approval.ApprovalStore | None = None,
    authors: Mapping[str, approval.Signature] | None = None,
    now: datetime | None = None,
    bootstrap: approval.Bootstrap | None = None,
) -> list[tuple[Planned, Deployment | None]]:
    """Deploy every contract over ``stations``; an invalid one is marked degraded and left as it was.

    The step both drivers share. ``before`` writes the state the driver shows (Kubernetes status
    and workloads, the embedded floor's manifest store) for the whole plan; only once it has
    returned is anything put in the bucket or recorded as ``contract.deployed``, so stations
    never enforce a revision the cluster does not show. When ``before`` raises, nothing is
    distributed. With ``approvals``, a revision no second person approved is held back
    (:attr:`Planned.held_back`, deployment ``None``); ``authors`` maps contract → the
    verified authorship signature that came with it. ``bootstrap`` (the floor's first seeding
    only) lets a contract's first revision out without a second person, recorded as
    ``contract.bootstrapped``.
    """
    moment = now or datetime.now(UTC)
    planned = [plan(contract, stations, key) for contract in contracts]
    if approvals is not None:
        planned = [
            await _judge(item, store, approvals, (authors or {}).get(item.name), moment, bootstrap)
            for item in planned
        ]
    if before is not None:
        await before(planned)
    results: list[tuple[Planned, Deployment | None]] = []
    for item in planned:
        if item.invalid is not None:
            log.warning("contract invalid", contract=item.name, error=item.invalid)
            results.append((item, None))
            continue
        if item.verdict is not None and approvals is not None and not item.verdict.allowed:
            await approvals.put(item.verdict.record)
            if item.verdict.submitted is not None and log_ is not None:
                log_.append(**submitted_entry(item, item.verdict.submitted), actor=actor)
            log.info(
                "contract pending approval",
                contract=item.name,
                revision=item.verdict.revision[:12],
                waiting_for=item.verdict.waiting_for,
            )
            results.append((item, None))
            continue
        if item.verdict is not None and item.verdict.bootstrapped is not None:
            # The exception is on the ledger before any station receives the revision.
            if log_ is not None:
                log_.append(**bootstrapped_entry(item, item.verdict.bootstrapped), actor=actor)
            seeded = item.verdict.bootstrapped.bootstrap
            log.warning(
                "contract bootstrapped",
                contract=item.name,
                revision=item.verdict.revision[:12],
                by=seeded.by if seeded else None,
                user=seeded.user if seeded else None,
                source=seeded.source if seeded else None,
            )
        deployment = await distribute(item, store=store, log_=log_, actor=actor)
        if item.verdict is not None and approvals is not None:
            await approvals.put(item.verdict.record)
        results.append((item, deployment))
    return results


async def _judge(
    item: Planned,
    store: BundleStore,
    approvals: approval.ApprovalStore,
    author: approval.Signature | None,
    now: datetime,
    bootstrap: approval.Bootstrap | None = None,
) -> Planned:
    if item.invalid is not None:
        return item
    verdict = approval.gate(
        item.contract,
        await approvals.get(item.name),
        held=await store.revisions(item.name),
        planned=item.revisions,
        author=author,
        now=now,
        bootstrap=bootstrap,
    )
    return replace(item, verdict=verdict)


def submitted_entry(item: Planned, revision: approval.Revision) -> dict[str, Any]:
    """The ``contract.submitted`` ledger entry: a revision compiled and waiting for its approver."""
    return {
        "kind": "contract.submitted",
        "subject": f"contract/{item.name}",
        "data": {
            "contract": item.name,
            "revision": revision.revision,
            "author": revision.author.badge if revision.author else None,
            "authorCredential": revision.author.credential_id if revision.author else None,
            "waitingFor": item.verdict.waiting_for if item.verdict else None,
            "stations": dict(sorted(item.revisions.items())),
        },
        "contract": revision.revision,
    }


def bootstrapped_entry(item: Planned, revision: approval.Revision) -> dict[str, Any]:
    """The ``contract.bootstrapped`` entry: a first revision out with no second person, on whose word."""
    seeded = revision.bootstrap
    return {
        "kind": "contract.bootstrapped",
        "subject": f"contract/{item.name}",
        "data": {
            "contract": item.name,
            "revision": revision.revision,
            "by": seeded.by if seeded else None,
            "user": seeded.user if seeded else None,
            "source": seeded.source if seeded else None,
            "stations": dict(sorted(item.revisions.items())),
        },
        "contract": revision.revision,
    }


def approved_entry(contract: str, signature: approval.Signature, *, emergency: bool) -> dict[str, Any]:
    """The ``contract.approved`` ledger entry naming the revision, the approver and their credential."""
    return {
        "kind": "contract.approved",
        "subject": f"contract/{contract}",
        "data": {
            "contract": contract,
            "revision": signature.revision,
            "approver": signature.badge,
            "authority": signature.authority,
            "methods": list(signature.methods),
            "credential": signature.credential_id,
            "emergency": emergency,
        },
        "contract": signature.revision,
    }


async def approve(
    contract: SmartContract,
    signature: approval.Signature,
    *,
    approvals: approval.ApprovalStore,
    log_: ledger.NodeLog | None,
    actor: str = ACTOR,
) -> approval.Record:
    """Record ``signature`` as the approval of its revision (ledger first); raises ``ApprovalRefused``.

    The driver then reconciles again, which distributes the now approved revision.
    """
    record = approval.approve(await approvals.get(contract.metadata.name), contract, signature)
    entry = record.find(signature.revision)
    if log_ is not None:
        log_.append(
            **approved_entry(contract.metadata.name, signature, emergency=bool(entry and entry.emergency)),
            actor=actor,
        )
    await approvals.put(record)
    log.info(
        "contract approved",
        contract=contract.metadata.name,
        revision=signature.revision[:12],
        approver=signature.badge,
        authority=signature.authority,
    )
    return record


async def deploy(
    contract: SmartContract,
    stations: Sequence[Station],
    *,
    key: SigningKey,
    store: BundleStore,
    log_: ledger.NodeLog | None,
    actor: str = ACTOR,
) -> Deployment:
    """Make the bucket hold this contract's bundles for exactly the stations it selects.

    Raises :class:`~smart.contracts.semantics.ContractInvalid` (touching nothing) for an invalid one.
    """
    item = plan(contract, stations, key)
    if item.invalid is not None:
        semantics.check(contract.metadata.name, contract.spec)  # raises with the full error
    return await distribute(item, store=store, log_=log_, actor=actor)


async def distribute(
    item: Planned, *, store: BundleStore, log_: ledger.NodeLog | None, actor: str = ACTOR
) -> Deployment:
    """Put the planned bundles that changed, retire the stations no longer selected, record both."""
    name = item.name
    contract = item.contract
    signed = item.bundles
    held = await store.revisions(name)
    changed: list[str] = []
    for item_ in signed:
        if held.get(item_.station) == item_.revision:
            continue
        await store.put(item_.station, name, item_.envelope)
        changed.append(item_.station)
        if log_ is not None:
            log_.append(
                kind="contract.deployed",
                subject=f"station/{item_.station}",
                data={
                    "contract": name,
                    "station": item_.station,
                    "revision": item_.revision,
                    "previous": held.get(item_.station),
                    "enforcement": contract.spec.enforcement,
                    # What the hub sent, so "what was in force" can be checked rule by rule.
                    "rules": [str(r.get("id")) for r in item_.bundle.get("rules", ())],
                    **({"specRevision": item.verdict.revision} if item.verdict is not None else {}),
                },
                actor=actor,
                contract=item_.revision,
            )
        log.info("contract deployed", contract=name, station=item_.station, revision=item_.short_revision)
    wanted = {b.station for b in signed}
    retired = sorted(station for station in held if station not in wanted)
    await _retire(name, {s: held[s] for s in retired}, store=store, log_=log_, actor=actor)
    deployment = Deployment(
        contract=name,
        revisions={b.station: b.revision for b in signed},
        desired=len(signed),
        changed=tuple(changed),
        retired=tuple(retired),
        bundles=tuple(signed),
        unplaced=item.unplaced,
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


ConditionStatus = Literal["True", "False", "Unknown"]
#: The two-person rule's condition: True once a second person approved the revision in force.
APPROVED = "Approved"


def _approval_condition(
    item: Planned, now: str, conditions: list[tuple[str, ConditionStatus, str, str]]
) -> tuple[str | None, str | None, str | None]:
    """Add the ``Approved`` condition; returns (state, who must approve, pending revision)."""
    verdict = item.verdict
    if verdict is None or item.invalid is not None:
        return None, None, None
    record = verdict.record
    if item.held_back:
        conditions.append(
            (
                APPROVED,
                "False",
                approval.PENDING,
                f"revision {verdict.revision[:12]} waits for approval by {verdict.waiting_for}",
            )
        )
        return approval.PENDING, verdict.waiting_for, verdict.revision
    entry = record.find(verdict.revision)
    moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
    state = entry.state(moment) if entry is not None else approval.APPROVED
    if state == approval.APPROVED:
        by = ", ".join(a.badge for a in entry.approvals) if entry and entry.approvals else None
        how = (
            " (first revision, bootstrapped)"
            if entry and entry.bootstrap
            else " (first revision, held already)"
        )
        text = f"revision {verdict.revision[:12]} approved" + (f" by {by}" if by else how)
        conditions.append((APPROVED, "True", approval.APPROVED, text))
        return state, None, None
    assert entry is not None and entry.approvals
    due = (entry.approvals[0].at + approval.COUNTERSIGN_WITHIN).isoformat()
    text = (
        f"emergency revision {verdict.revision[:12]} distributed on {entry.approvals[0].badge}'s approval; "
        f"a second person must countersign by {due}"
        + (" — OVERDUE" if state == approval.COUNTERSIGN_OVERDUE else "")
    )
    conditions.append((APPROVED, "True", state, text))
    return state, approval.who_must_approve(item.contract), None


# Condition types and reasons of a contract's status, the same from both drivers.
READY, DISTRIBUTED, DEGRADED, NO_STATIONS, MODULES_PLACED = (
    "Ready",
    "Distributed",
    "Degraded",
    "NoStations",
    "ModulesPlaced",
)


def contract_status(
    item: Planned,
    *,
    generation: int | None,
    distributed: bool,
    active: Mapping[str, str] | None,
    held: Mapping[str, str] | None = None,
    previous: SmartContractStatus | None = None,
    now: str,
) -> SmartContractStatus:
    """The status a contract should show: revisions, synced N/M, and its conditions.

    ``active`` is what the selected stations report in force (their heartbeats; only stations
    heard recently count), ``None`` where nobody listens (``smart apply``: Ready is then
    ``Unknown`` and "synced N/M" counts the bundles sent). Ready is true only
    when every selected station reports the revision it was sent; "synced N/M" counts those
    activations; a contract selecting no station gets ``NoStations`` and is not Ready. An
    invalid contract keeps showing the revisions stations ``held`` before. A condition's
    ``lastTransitionTime`` moves only when its status changes (from ``previous``).
    """
    holding = item.invalid is not None or item.held_back
    wanted = dict(held or {}) if holding else item.revisions
    desired = len(wanted)
    if active is None and distributed:  # nobody listens (``smart apply``): N/M counts bundles sent
        synced = desired
    else:
        synced = sum(1 for station, revision in wanted.items() if (active or {}).get(station) == revision)
    waiting = sorted(
        station for station, revision in wanted.items() if (active or {}).get(station) != revision
    )
    ready: ConditionStatus
    if item.invalid is not None:
        ready, reason, text = (
            "False",
            "InvalidContract",
            "invalid contract; stations keep their previous revision",
        )
    elif item.held_back and item.verdict is not None:
        ready, reason = "False", approval.PENDING
        text = (
            f"revision {item.verdict.revision[:12]} waits for approval by {item.verdict.waiting_for}; "
            "stations keep their previous revision"
        )
    elif desired == 0:
        ready, reason, text = "False", NO_STATIONS, "the station selector matches no station"
    elif not distributed:
        ready, reason, text = "False", "Distributing", f"sending revisions to {desired} stations"
    elif active is None:
        ready, reason, text = (
            "Unknown",
            "NotObserved",
            f"distributed to {desired} stations; activation not observed",
        )
    elif waiting:
        ready, reason = "False", "Activating"
        text = f"synced {synced}/{desired} stations; not yet active on {', '.join(waiting)}"
    else:
        ready, reason, text = "True", "Active", f"synced {synced}/{desired} stations"
    warnings = item.warnings
    in_kv = bool(held) if holding else distributed
    conditions: list[tuple[str, ConditionStatus, str, str]] = [
        (READY, ready, reason, text),
        (
            DISTRIBUTED,
            "True" if in_kv else "False",
            "BundlesInKV" if in_kv else ("NotDistributed" if item.invalid else "Distributing"),
            f"{len(wanted)} bundles in the contracts bucket" if in_kv else "not yet distributed",
        ),
        (
            DEGRADED,
            "True" if item.invalid else "False",
            "InvalidContract" if item.invalid else "AsExpected",
            item.invalid or "no problems",
        ),
        (
            NO_STATIONS,
            "True" if desired == 0 and item.invalid is None else "False",
            "SelectorMatchesNone" if desired == 0 and item.invalid is None else "StationsSelected",
            "the station selector matches no station"
            if desired == 0 and item.invalid is None
            else f"{desired} stations selected",
        ),
        (
            MODULES_PLACED,
            "False" if warnings else "True",
            MODULE_NOT_PLACED if warnings else "AllPlaced",
            "; ".join(warnings) or "every module runs on every selected station",
        ),
    ]
    state, waiting_for, pending_revision = _approval_condition(item, now, conditions)
    before = {c.type: c for c in (previous.conditions if previous else [])}
    short = sorted({revision[:12] for revision in wanted.values()})
    return SmartContractStatus(
        observed_generation=generation,
        revisions=dict(sorted(wanted.items())),
        revision=short[0] if len(short) == 1 else (f"{len(short)} revisions" if short else "-"),
        stations=f"{synced}/{desired}",
        ready=ready,
        approval=state,
        pending_revision=pending_revision,
        approver=waiting_for,
        conditions=[
            Condition(
                type=kind,
                status=status,
                reason=why,
                message=message[:1000],
                observed_generation=generation,
                last_transition_time=(
                    before[kind].last_transition_time
                    if kind in before and before[kind].status == status and before[kind].last_transition_time
                    else now
                ),
            )
            for kind, status, why, message in conditions
        ],
    )
