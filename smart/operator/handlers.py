"""kopf handlers: SmartContract and Station in, bundles in KV, DaemonSets, status and Events out.

Run with ``smart operator run`` or ``kopf run -m smart.operator.handlers``.
Settings come from :mod:`smart.settings` (NATS URL, keys and state
directories); ``SMART_KUBE_SERVER`` points the operator at an API server
without credentials (tests, a local proxy), otherwise it logs in with its
service account or kubeconfig like any kopf operator.

Every handler is idempotent: the reconcile core puts a bundle only when its
revision changed, and a DaemonSet is patched only when its desired spec
changed, so kopf's replays (resume, re-listing) do no harm. A contract whose
semantics are wrong gets ``Degraded`` with the error and a Warning event;
nothing is distributed and the revisions stations hold stay active.

Each Station's status also says whether the station is online and what it holds in force, from the
heartbeats the stations publish on the hub NATS (:mod:`smart.operator.heartbeats`, one background
task started with the operator, writes throttled).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import kopf
import nats
import pydantic
import structlog
from nats.aio.client import Client as NatsClient

from smart import ledger
from smart import settings as smart_settings
from smart.bus import subjects
from smart.contracts import distribution, reconcile, semantics
from smart.contracts.models import GROUP, VERSION, SmartContract, Station
from smart.keys import KeyStore, SigningKey
from smart.operator import heartbeats, kube, workloads

log = structlog.get_logger("smart.operator")

CONTRACTS = "smartcontracts"
STATIONS = "stations"
FINALIZER = f"{GROUP}/retire"
LEDGER_NODE = "smart-operator"


@dataclass
class Runtime:
    """What the handlers share: the hub NATS connection, the bundle store, the hub key, the ledger."""

    nats: NatsClient
    store: distribution.KvBundleStore
    key: SigningKey
    log: ledger.NodeLog
    lock: asyncio.Lock
    status_keeper: asyncio.Task[None] | None = None
    #: The ``station_image`` setting: the module DaemonSets' image (None: the manifests').
    image: str | None = None


_connection: dict[str, Any] = {}


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    server = os.environ.get("SMART_KUBE_SERVER")
    info: kopf.ConnectionInfo | None
    if server:
        info = kopf.ConnectionInfo(server=server)
    else:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is not None:
        _connection["info"] = info
    return info


@kopf.on.startup()  # type: ignore[arg-type]  # indexes come as kwargs
async def startup(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    **_: Any,
) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.INFO  # INFO and above become Kubernetes Events
    config = smart_settings.load()
    keys = KeyStore(config.key_directory)
    url = config.nats_url or f"nats://{config.host}:{config.nats_port}"
    connection = await nats.connect(url, name="smart-operator")
    kv = await distribution.bucket(connection.jetstream())
    memo.smart = Runtime(
        nats=connection,
        store=distribution.KvBundleStore(kv),
        key=keys.signing_key("hub"),
        log=ledger.NodeLog.open(config.state_dir / "ledger", node=LEDGER_NODE, keys=keys),
        lock=asyncio.Lock(),
        image=config.station_image,
    )
    heard = heartbeats.Heard()
    await connection.subscribe(subjects.HEARTBEATS, cb=heard.on_message)
    memo.smart.status_keeper = asyncio.create_task(
        heartbeats.keep_status(
            heard=heard,
            stations=lambda: _all_stations(station_index),
            patch=_patch_station_status,
            offline_after_s=config.station_offline_after_s,
        ),
        name="station-status",
    )
    log.info("operator started", nats=url, hub_key=memo.smart.key.key_id)


def _all_stations(index: kopf.Index[str | None, Station]) -> list[Station]:
    return [station for namespace in list(index) for station in index.get(namespace, [])]


async def _patch_station_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """Heartbeat fields of a Station, through its status subresource."""
    await _kube().merge_patch(
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{STATIONS}/{name}/status", {"status": status}
    )


def _kube() -> kube.Kube:
    """The API client over the connection the login handler found (login runs after startup)."""
    info = _connection.get("info")
    if info is None:
        raise kopf.PermanentError("no Kubernetes connection: the login handler found no credentials")
    token = info.token if isinstance(info.token, str) else None
    return kube.Kube(str(info.server), token=token, ca_path=info.ca_path, insecure=bool(info.insecure))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "smart", None)
    if runtime is not None:
        if runtime.status_keeper is not None:
            runtime.status_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runtime.status_keeper
        await runtime.nats.close()
        runtime.log.close()


@kopf.index(GROUP, VERSION, STATIONS)
def station_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str | None, Station]:
    try:
        return {namespace: Station.model_validate(_plain(body))}
    except pydantic.ValidationError:
        return {}


@kopf.index(GROUP, VERSION, CONTRACTS)
def contract_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str | None, SmartContract]:
    """Contracts in force; one being deleted is retiring, and a station change must not bring it back."""
    if body.metadata.get("deletionTimestamp"):
        return {}
    try:
        return {namespace: SmartContract.model_validate(_plain(body))}
    except pydantic.ValidationError:
        return {}


def _plain(body: kopf.Body) -> dict[str, Any]:
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            k: v
            for k, v in dict(body.metadata).items()
            if k in ("name", "namespace", "labels", "uid", "generation")
        },
        "spec": dict(body.spec),
        "status": dict(body.status),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _conditions(
    generation: int | None, *, ready: bool, distributed: bool, degraded: str | None, message: str
) -> list[dict[str, Any]]:
    now = _now()

    def condition(kind: str, status: bool, reason: str, text: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True" if status else "False",
            "reason": reason,
            "message": text,
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }

    return [
        condition("Ready", ready, "Deployed" if ready else "NotReady", message),
        condition("Distributed", distributed, "BundlesInKV" if distributed else "NotDistributed", message),
        condition(
            "Degraded",
            degraded is not None,
            "InvalidContract" if degraded else "AsExpected",
            degraded or "no problems",
        ),
    ]


def _deployed_status(
    generation: int | None, deployment: reconcile.Deployment, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Status of a deployed contract: revisions per station, synced/desired, Ready and Distributed.

    Stations that no longer hold a bundle are set to null: status is merge-patched, and a merge
    patch keeps map keys it does not mention.
    """
    revisions: dict[str, str | None] = {station: None for station in previous or {}}
    revisions.update(deployment.revisions)
    synced = f"{deployment.synced}/{deployment.desired}"
    short = sorted({r[:12] for r in deployment.revisions.values()})
    return {
        "observedGeneration": generation,
        "revisions": revisions,
        "revision": short[0] if len(short) == 1 else (f"{len(short)} revisions" if short else "-"),
        "stations": synced,
        "ready": "True",
        "conditions": [
            *_conditions(
                generation, ready=True, distributed=True, degraded=None, message=f"synced {synced} stations"
            ),
            _placement(generation, deployment),
        ],
    }


def _placement(generation: int | None, deployment: reconcile.Deployment) -> dict[str, Any]:
    """ModulesPlaced: False, naming module and stations, when a manifest kept a module off a station."""
    warnings = deployment.warnings
    return {
        "type": "ModulesPlaced",
        "status": "False" if warnings else "True",
        "reason": reconcile.MODULE_NOT_PLACED if warnings else "AllPlaced",
        "message": "; ".join(warnings) or "every module runs on every selected station",
        "observedGeneration": generation,
        "lastTransitionTime": _now(),
    }


async def _record_on_stations(
    namespace: str | None, contract: str, stations: list[Station], revisions: dict[str, str | None]
) -> None:
    """Write ``status.revisions[contract]`` on each Station: the revision the hub distributed to it.

    ``status.activeRevision(s)`` come from the station's heartbeats (:mod:`smart.operator.heartbeats`).
    """
    by_id = {s.spec.station_id: s.metadata.name for s in stations}
    for station_id, revision in sorted(revisions.items()):
        name = by_id.get(station_id)
        if name is None:
            continue
        await _kube().merge_patch(
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace or 'default'}/{STATIONS}/{name}/status",
            {"status": {"revisions": {contract: revision}}},
        )


def _distributed(deployment: reconcile.Deployment) -> dict[str, str | None]:
    changed: dict[str, str | None] = {station: None for station in deployment.retired}
    changed.update(deployment.revisions)
    return changed


def _in_namespace(index: kopf.Index[str | None, Any], namespace: str | None) -> list[Any]:
    return list(index.get(namespace, []))


async def _apply_workloads(
    runtime: Runtime, namespace: str | None, contracts: Iterable[SmartContract], stations: list[Station]
) -> None:
    contracts = list(contracts)
    ns = namespace or "default"
    owners = {c.metadata.name: c.metadata.uid or "" for c in contracts}
    desired = [
        workloads.daemonset(w, namespace=ns, owners=owners, image=runtime.image)
        for w in reconcile.workloads(contracts, stations)
    ]
    path = f"/apis/apps/v1/namespaces/{ns}/daemonsets"
    existing = await _kube().list(path, label_selector=workloads.SELECTOR)
    create, patch, delete = workloads.changes(desired, existing)
    for body in create:
        await _kube().create(path, body)
        log.info("workload created", daemonset=body["metadata"]["name"], namespace=ns)
    for body in patch:
        await _kube().merge_patch(f"{path}/{body['metadata']['name']}", body)
        log.info("workload patched", daemonset=body["metadata"]["name"], namespace=ns)
    for name in delete:
        await _kube().delete(f"{path}/{name}")
        log.info("workload deleted", daemonset=name, namespace=ns)


def _with(contracts: list[SmartContract], current: SmartContract | None, name: str) -> list[SmartContract]:
    others = [c for c in contracts if c.metadata.name != name]
    return sorted(others + ([current] if current is not None else []), key=lambda c: c.metadata.name)


@kopf.on.resume(GROUP, VERSION, CONTRACTS)
@kopf.on.create(GROUP, VERSION, CONTRACTS)
@kopf.on.update(GROUP, VERSION, CONTRACTS)  # type: ignore[arg-type]  # indexes come as kwargs
async def contract_changed(
    *,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """Deploy a new or edited contract; an invalid one degrades and leaves stations as they were."""
    runtime: Runtime = memo.smart
    generation = body.metadata.get("generation")
    stations = _in_namespace(station_index, namespace)
    previous = dict(status.get("revisions", {}) or {})
    try:
        contract = SmartContract.model_validate(_plain(body))
        async with runtime.lock:
            deployment = await reconcile.deploy(
                contract, stations, key=runtime.key, store=runtime.store, log_=runtime.log
            )
            await _apply_workloads(
                runtime, namespace, _with(_in_namespace(contract_index, namespace), contract, name), stations
            )
            await _record_on_stations(namespace, name, stations, _distributed(deployment))
    except (semantics.ContractInvalid, pydantic.ValidationError) as err:
        message = str(err) if isinstance(err, semantics.ContractInvalid) else f"contract {name}: {err}"
        patch.status["observedGeneration"] = generation
        patch.status["ready"] = "False"
        patch.status["conditions"] = _conditions(
            generation,
            ready=False,
            distributed=bool(previous),
            degraded=message,
            message="invalid contract; stations keep their previous revision",
        )
        kopf.warn(body, reason="InvalidContract", message=message[:1000])
        log.warning("contract invalid", contract=name, error=message)
        return
    for field, value in _deployed_status(generation, deployment, previous).items():
        patch.status[field] = value
    _announce(body, deployment)


def _announce(contract: kopf.Body, deployment: reconcile.Deployment) -> None:
    """A Kubernetes Event on the contract whenever a handler changed what its stations hold.

    A station's creation can deploy a new contract before the contract's own handler runs, which
    then finds nothing to change; the event comes from whichever handler did the work.
    """
    if deployment.changed and deployment.warnings:
        kopf.warn(contract, reason=reconcile.MODULE_NOT_PLACED, message="; ".join(deployment.warnings)[:1000])
    if deployment.changed or deployment.retired:
        kopf.info(
            contract,
            reason="Deployed",
            message=f"revision to {', '.join(deployment.changed) or 'no station'}; "
            f"retired from {', '.join(deployment.retired) or 'no station'}",
        )


def _reference(contract: SmartContract) -> kopf.Body:
    """What kopf needs to post an Event on a contract known only from the index."""
    raw = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SmartContract",
        "metadata": {
            "name": contract.metadata.name,
            "namespace": contract.metadata.namespace,
            "uid": contract.metadata.uid,
        },
    }
    return kopf.Body(cast("kopf.RawBody", raw))


@kopf.on.delete(GROUP, VERSION, CONTRACTS)  # type: ignore[arg-type]
async def contract_deleted(
    *,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """The finalizer's work: retire the contract from KV and the ledger, drop workloads no one needs."""
    runtime: Runtime = memo.smart
    async with runtime.lock:
        retired = await reconcile.retire(name, store=runtime.store, log_=runtime.log)
        await _record_on_stations(
            namespace, name, _in_namespace(station_index, namespace), dict.fromkeys(retired)
        )
        await _apply_workloads(
            runtime,
            namespace,
            _with(_in_namespace(contract_index, namespace), None, name),
            _in_namespace(station_index, namespace),
        )


@kopf.on.resume(GROUP, VERSION, STATIONS)
@kopf.on.create(GROUP, VERSION, STATIONS)
@kopf.on.update(GROUP, VERSION, STATIONS)
@kopf.on.delete(GROUP, VERSION, STATIONS, optional=True)  # type: ignore[arg-type]
async def station_changed(
    *,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    reason: str,
    memo: kopf.Memo,
    patch: kopf.Patch,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """A station came, went or changed labels: redeploy every contract so selections stay right."""
    runtime: Runtime = memo.smart
    stations = [s for s in _in_namespace(station_index, namespace) if s.metadata.name != name]
    if reason != "delete":
        try:
            stations.append(Station.model_validate(_plain(body)))
        except pydantic.ValidationError as err:
            kopf.warn(body, reason="InvalidStation", message=str(err)[:1000])
            return
    async with runtime.lock:
        # Read under the lock: a contract retired while this handler waited is out of the index by now.
        contracts = _in_namespace(contract_index, namespace)
        deployed: list[tuple[SmartContract, reconcile.Deployment]] = []
        for contract in contracts:
            try:
                deployment = await reconcile.deploy(
                    contract, stations, key=runtime.key, store=runtime.store, log_=runtime.log
                )
            except semantics.ContractInvalid as err:
                log.warning("contract invalid", contract=contract.metadata.name, station=name, error=str(err))
                continue
            deployed.append((contract, deployment))
        # Workloads before statuses, so a contract shown Ready has its module pods placed.
        await _apply_workloads(runtime, namespace, contracts, stations)
        for contract, deployment in deployed:
            await _record_on_stations(namespace, contract.metadata.name, stations, _distributed(deployment))
            _announce(_reference(contract), deployment)
            await _kube().merge_patch(
                f"/apis/{GROUP}/{VERSION}/namespaces/{namespace or 'default'}/{CONTRACTS}/"
                f"{contract.metadata.name}/status",
                {
                    "status": _deployed_status(
                        contract.metadata.generation, deployment, (contract.status or {}).get("revisions")
                    )
                },
            )


def registry() -> kopf.OperatorRegistry:
    """The registry these handlers are in (kopf's default), for drivers that start kopf themselves."""
    return kopf.get_default_registry()
