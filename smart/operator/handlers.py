"""kopf handlers: SmartContract and Station in, node labels, DaemonSets, status, then bundles out.

Run with ``smart operator run`` or ``kopf run -m smart.operator.handlers``.
Settings come from :mod:`smart.settings` (NATS URL, keys and state
directories); ``SMART_KUBE_SERVER`` points the operator at an API server
without credentials (tests, a local proxy), otherwise it logs in the way kopf
does with the ``kubernetes`` client installed: in-cluster service account,
else the kubeconfig (tokens, inline or file CA, client certificates, exec
plugins), and its own API calls (:mod:`smart.operator.kube`) use that login.

Order of every reconcile (:func:`smart.contracts.reconcile.deploy_all`): compile and sign, then
write the cluster state (node labels, DaemonSets, each Station's ``status.revisions``, the
contract's status), and only then put bundles in KV and record ``contract.deployed``. A cluster
write that fails raises before anything is distributed, kopf retries, and stations never enforce
a revision the cluster does not show.

Every handler is idempotent: the reconcile core puts a bundle only when its revision changed, a
DaemonSet is patched only when its desired spec changed, a node only when its module labels do,
and a status only when it differs from what is shown (a condition's ``lastTransitionTime`` moves
only when its status does), so kopf's replays and an operator restart do no harm and no churn.
A contract whose semantics are wrong gets ``Degraded`` with the error and a Warning event;
nothing is distributed and the revisions stations hold stay active.

Two people before a rule changes (:mod:`smart.contracts.approval`): a changed spec is compiled and
validated at once, but held (``status.approval: PendingApproval``, naming who must approve) until a
``ContractApproval`` naming that exact revision carries a second person's SMART-ID signature. The
operator verifies it (SMART-ID's pinned key, time, revocations; not the author; the authority the
contract names) before anything is distributed, and writes the verdict on the approval's status.
RBAC decides who may create a ContractApproval at all (``smart-contract-approver``). The author
proves themself with the annotation :data:`~smart.contracts.models.AUTHOR_ANNOTATION`.

At start the operator makes the hub's streams and buckets (:func:`smart.hub.streams.ensure_hub_streams`,
idempotent): on Kubernetes no hub role's NATS user may create them, and the operator signs in as the
driver and always runs.

Ready means active: a contract is Ready only when every selected station's heartbeat reports the
revision it was sent (:mod:`smart.operator.heartbeats`); a background task keeps each contract's
status and each Station's status in step with the heartbeats. A Station has a finalizer: deleting
it retires its bundles (``contract.retired``), drops its node's module labels and updates the
contracts it was in, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import kopf
import nats
import pydantic
import structlog
from nats.aio.client import Client as NatsClient

from smart import ledger
from smart import settings as smart_settings
from smart.bus import subjects
from smart.contracts import approval, distribution, reconcile
from smart.contracts.models import (
    AUTHOR_ANNOTATION,
    GROUP,
    VERSION,
    ContractApprovalSpec,
    SmartContract,
    SmartContractStatus,
    Station,
)
from smart.hub import streams
from smart.keys import KeyStore, SigningKey
from smart.operator import heartbeats, kube, metrics, shipping, workloads

log = structlog.get_logger("smart.operator")

CONTRACTS = "smartcontracts"
STATIONS = "stations"
APPROVALS = "contractapprovals"
FINALIZER = f"{GROUP}/retire"
LEDGER_NODE = "smart-operator"
HUB_KEY = "hub"
#: Seconds before kopf retries a handler that raised (an API server or NATS away a moment), not
#: kopf's default minute: a refused cluster write holds distribution back only this long after a fix.
RETRY_S = 5.0

Key = tuple[str, str]  # namespace, name


@dataclass
class Shown:
    """What a contract's status is built from: its plan, whether it is in KV, what KV held."""

    planned: reconcile.Planned
    generation: int | None
    distributed: bool
    held: Mapping[str, str]


@dataclass
class Runtime:
    """What the handlers share: hub NATS, the bundle store, the hub key, the ledger, the heartbeats."""

    nats: NatsClient
    store: distribution.KvBundleStore
    key: SigningKey
    log: ledger.NodeLog
    lock: asyncio.Lock
    heard: heartbeats.Heard
    offline_after_s: float
    contracts: dict[Key, Shown] = field(default_factory=dict)
    written: dict[Key, SmartContractStatus] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: The ``station_image`` setting: the module DaemonSets' image (None: the manifests').
    image: str | None = None
    #: The two-person rule's records (the hub's ``contract-approvals`` bucket) and the key directory
    #: SMART-ID's public key is pinned from.
    approvals: approval.ApprovalStore | None = None
    keys: KeyStore | None = None
    #: ``contract_bootstrap`` on: first revisions go out on this bootstrap (recorded); off: None.
    bootstrap: approval.Bootstrap | None = None


_connection: dict[str, Any] = {}
_state: dict[str, Runtime] = {}


def ready() -> bool:
    """Readiness: the operator started (hub NATS connected, hub key loaded, ledger open)."""
    runtime = _state.get("runtime")
    return runtime is not None and runtime.nats.is_connected


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own login order, remembered so the operator's own calls use the same connection."""
    server = os.environ.get("SMART_KUBE_SERVER")
    info: kopf.ConnectionInfo | None
    if server:
        info = kopf.ConnectionInfo(server=server)
    else:
        try:  # in-cluster, else kubeconfig: tokens, CA data, client certificates, exec plugins
            info = kube.login_with_client(kwargs["settings"])
        except kopf.LoginError as err:
            log.warning("kubernetes client login failed; trying kopf's own", error=str(err))
            info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is not None:
        _connection["info"] = info
    return info


def _kube() -> kube.Kube:
    """The API client over the connection the login handler found; rebuilt when kopf logs in again."""
    info = _connection.get("info")
    if info is None:
        raise kopf.TemporaryError("no Kubernetes connection yet: the login handler has not run", delay=1)
    current: kube.Kube | None = _connection.get("client")
    if current is None or current.info is not info:
        current = kube.Kube(info)
        _connection["client"] = current
    return current


def hub_key(directory: os.PathLike[str] | str) -> SigningKey:
    """The provisioned hub key; never generated here (stations would refuse what it signs)."""
    path = os.path.join(os.fspath(directory), f"{HUB_KEY}.key")
    if not os.path.exists(path):
        raise kopf.PermanentError(
            f"no hub key at {path}: provision the hub's signing key there (SMART_KEYS_DIR) before starting"
            " the operator; a key made up here would sign bundles every station refuses"
        )
    return KeyStore(Path(directory)).signing_key(HUB_KEY)


@kopf.on.startup(backoff=RETRY_S)  # type: ignore[arg-type]  # indexes come as kwargs
async def startup(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    settings.persistence.finalizer = FINALIZER
    # Progress in annotations only: the status schema is the operator's, field by field.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.posting.level = logging.INFO  # INFO and above become Kubernetes Events
    config = smart_settings.load()
    keys = KeyStore(config.key_directory)
    key = hub_key(config.key_directory)  # before anything is opened: a refusal leaks nothing
    url = config.nats_url or f"nats://{config.host}:{config.nats_port}"
    connection = await nats.connect(url, name="smart-operator", **config.hub_nats_signin())
    node_log: ledger.NodeLog | None = None
    try:  # every later failure closes what was opened, so kopf's retries leak no connection
        # On Kubernetes nothing else may make the hub's streams and buckets: the hub roles' NATS users
        # cannot create them, and the operator (the driver) is the one component always running.
        await streams.ensure_hub_streams(connection.jetstream())
        kv = await distribution.bucket(connection.jetstream())
        node_log = ledger.NodeLog.open(config.state_dir / "ledger", node=LEDGER_NODE, keys=keys)
        heard = heartbeats.Heard()
        approvals = approval.KvApprovalStore(await approval.bucket(connection.jetstream()))
        runtime = Runtime(
            nats=connection,
            approvals=approvals,
            bootstrap=approval.Bootstrap(
                by="smart-operator (SMART_CONTRACT_BOOTSTRAP=true)",
                user=os.environ.get("HOSTNAME", "smart-operator"),
                source="SmartContracts in the cluster",
            )
            if config.contract_bootstrap
            else None,
            keys=keys,
            store=distribution.KvBundleStore(kv),
            key=key,
            log=node_log,
            lock=asyncio.Lock(),
            image=config.station_image,
            heard=heard,
            offline_after_s=config.station_offline_after_s,
        )
        await connection.subscribe(subjects.HEARTBEATS, cb=heard.on_message)
    except BaseException:
        if node_log is not None:
            node_log.close()
        await connection.close()
        raise
    memo.smart = runtime
    _state["runtime"] = runtime
    runtime.tasks.append(
        asyncio.create_task(
            heartbeats.keep_status(
                heard=heard,
                stations=lambda: _all(station_index),
                patch=_patch_station_status,
                offline_after_s=config.station_offline_after_s,
            ),
            name="station-status",
        )
    )
    runtime.tasks.append(
        asyncio.create_task(_keep_contracts(runtime, station_index, contract_index), name="contract-status")
    )
    runtime.tasks.append(  # the hub takes this node's entries as it takes a station's
        asyncio.create_task(
            shipping.ship(node_log, connection, shipping.Cursor(config.state_dir / "ledger" / "shipped-seq")),
            name="ledger-shipping",
        )
    )
    where = urllib.parse.urlsplit(url)  # host and port only: the URL carries the driver's password
    log.info("operator started", nats=f"{where.hostname}:{where.port}", hub_key=key.key_id)


@kopf.on.probe(id="hub_nats")
def hub_nats_probe(memo: kopf.Memo, **_: Any) -> bool:
    """Part of kopf's liveness answer: is the hub NATS connection up."""
    runtime: Runtime | None = getattr(memo, "smart", None)
    return runtime is not None and runtime.nats.is_connected


def _all(index: kopf.Index[str | None, Any]) -> list[Any]:
    return [item for namespace in list(index) for item in index.get(namespace, [])]


async def _patch_station_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """Heartbeat fields of a Station, through its status subresource."""
    await _kube().patch_status(STATIONS, namespace, name, status)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "smart", None)
    _state.pop("runtime", None)
    _nodes_seen.clear()  # a start in the same process lists the nodes afresh
    if runtime is not None:
        for task in runtime.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.nats.close()
        runtime.log.close()
    client: kube.Kube | None = _connection.pop("client", None)
    if client is not None:
        await client.close()


@kopf.index(GROUP, VERSION, STATIONS)
def station_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str | None, Station]:
    """Stations in force; one being deleted is leaving, and no contract may select it again."""
    if body.metadata.get("deletionTimestamp"):
        return {}
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
    metadata = {
        k: v
        for k, v in dict(body.metadata).items()
        if k in ("name", "namespace", "labels", "uid", "generation")
    }
    author = dict(body.metadata.annotations).get(AUTHOR_ANNOTATION)
    if author:
        metadata["annotations"] = {AUTHOR_ANNOTATION: author}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": metadata,
        "spec": dict(body.spec),
        "status": dict(body.status),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _shown_status(raw: Mapping[str, Any] | None) -> SmartContractStatus | None:
    try:
        return SmartContractStatus.model_validate(dict(raw or {}))
    except pydantic.ValidationError:
        return None


async def _show(
    runtime: Runtime,
    key: Key,
    stations: Sequence[Station],
    shown_on_object: Mapping[str, Any] | None = None,
) -> None:
    """Write the contract's status if it differs from what is shown (no churn, stable times)."""
    item = runtime.contracts.get(key)
    if item is None:
        return
    previous = runtime.written.get(key) or _shown_status(shown_on_object)
    selected = reconcile.selected_stations(item.planned.contract, stations)
    reports = runtime.heard.active(selected, now=time.monotonic(), offline_after_s=runtime.offline_after_s)
    active = {sid: revisions[key[1]] for sid, revisions in reports.items() if key[1] in revisions}
    status = reconcile.contract_status(
        item.planned,
        generation=item.generation,
        distributed=item.distributed,
        active=active,
        held=item.held,
        previous=previous,
        now=_now(),
    )
    if status == previous:
        runtime.written[key] = status
        return
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    dropped = set(previous.revisions if previous else ()) - set(status.revisions)
    body["revisions"] = {**body["revisions"], **dict.fromkeys(dropped)}  # merge patch: null drops a key
    # A field the new status no longer has (the pendingRevision and approver once approved) must be
    # nulled too, or kubectl keeps showing a revision as pending after its approval.
    was = previous.model_dump(mode="json", by_alias=True, exclude_none=True) if previous else {}
    body.update(dict.fromkeys(was.keys() - body.keys()))
    await _kube().patch_status(CONTRACTS, *key, body)
    runtime.written[key] = status
    if previous is None or previous.ready != status.ready:
        log.info("contract status", contract=key[1], ready=status.ready, stations=status.stations)


async def _keep_contracts(
    runtime: Runtime,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
) -> None:
    """Forever: Ready and synced N/M follow the heartbeats (activations), one write per change."""
    tick = min(1.0, runtime.offline_after_s / 4)
    while True:
        await asyncio.sleep(tick)
        async with runtime.lock:
            for key in list(runtime.contracts):
                stations = list(station_index.get(key[0], []))
                try:
                    await _show(runtime, key, stations)
                except Exception as err:  # the API server may be away; the next tick tries again
                    log.warning("contract status not written", contract=key[1], error=str(err)[:200])


async def _record_on_stations(
    namespace: str | None, contract: str, stations: Iterable[Station], revisions: Mapping[str, str | None]
) -> None:
    """Write ``status.revisions[contract]`` on each Station: the revision the hub sends it (null: none).

    ``status.activeRevision(s)`` come from the station's heartbeats (:mod:`smart.operator.heartbeats`).
    """
    by_id = {s.spec.station_id: s for s in stations}
    for station_id, revision in sorted(revisions.items()):
        station = by_id.get(station_id)
        if station is None:
            continue
        if ((station.status or {}).get("revisions") or {}).get(contract) == revision:
            continue
        await _kube().patch_status(
            STATIONS, namespace or "default", station.metadata.name, {"revisions": {contract: revision}}
        )


async def _apply_workloads(
    namespace: str | None, contracts: Iterable[SmartContract], stations: list[Station]
) -> None:
    """Node labels and DaemonSets for what all contracts together need.

    Labels first when adding (a new DaemonSet finds its nodes), DaemonSets are never rewritten
    for a station joining or leaving: only the labels of that station's node change.
    """
    contracts = list(contracts)
    ns = namespace or "default"
    client = _kube()
    owners = {c.metadata.name: c.metadata.uid or "" for c in contracts}
    needed = reconcile.workloads(contracts, stations)
    for node, labels in workloads.label_changes(await client.nodes(), needed).items():
        await client.label_node(node, labels)
        log.info("node labels", node=node, labels=labels, namespace=ns)
    runtime: Runtime | None = _state.get("runtime")
    image = runtime.image if runtime is not None else None
    desired = [workloads.daemonset(w, namespace=ns, owners=owners, image=image) for w in needed]
    existing = await client.daemonsets(ns, label_selector=workloads.SELECTOR)
    create, patch, delete = workloads.changes(desired, existing)
    for body in create:
        await client.create_daemonset(ns, workloads.typed(body))
        log.info("workload created", daemonset=body["metadata"]["name"], namespace=ns)
    for body in patch:
        await client.patch_daemonset(ns, body["metadata"]["name"], workloads.typed(body))
        log.info("workload patched", daemonset=body["metadata"]["name"], namespace=ns)
    for name in delete:
        await client.delete_daemonset(ns, name)
        log.info("workload deleted", daemonset=name, namespace=ns)


def _key(namespace: str | None, name: str) -> Key:
    return (namespace or "default", name)


async def _reconcile(
    runtime: Runtime,
    namespace: str | None,
    contracts: Sequence[SmartContract],
    stations: list[Station],
    *,
    shown: Mapping[str, Mapping[str, Any]],
    resource: str,
) -> list[tuple[reconcile.Planned, reconcile.Deployment | None]]:
    """Deploy ``contracts`` over ``stations``: cluster state first, then bundles and ledger.

    ``shown`` maps contract name → the status its object shows now (for stable condition times).
    """
    started = time.monotonic()

    async def before(planned: Sequence[reconcile.Planned]) -> None:
        # Every contract's workloads, a degraded one's too: its previous revision still runs.
        await _apply_workloads(namespace, contracts, stations)
        for item in planned:
            held = await runtime.store.revisions(item.name)
            key = _key(namespace, item.name)
            if item.invalid is None:
                sent: dict[str, str | None] = dict.fromkeys(held)
                sent.update(item.revisions)
                await _record_on_stations(namespace, item.name, stations, sent)
            runtime.contracts[key] = Shown(
                item,
                item.contract.metadata.generation,
                distributed=item.invalid is None and dict(held) == item.revisions,
                held=held,
            )
            await _show(runtime, key, stations, shown.get(item.name))

    try:
        results = await reconcile.deploy_all(
            contracts,
            stations,
            key=runtime.key,
            store=runtime.store,
            log_=runtime.log,
            before=before,
            approvals=runtime.approvals,
            authors=await _authors(runtime, contracts),
            bootstrap=runtime.bootstrap,
        )
    except Exception:
        metrics.ERRORS.labels(resource).inc()
        metrics.RECONCILES.labels(resource, "error").inc()
        raise
    metrics.DISTRIBUTION.observe(time.monotonic() - started)
    for item, deployment in results:
        key = _key(namespace, item.name)
        if deployment is None:
            metrics.RECONCILES.labels(resource, "pending" if item.held_back else "degraded").inc()
            continue
        metrics.RECONCILES.labels(resource, "deployed").inc()
        runtime.contracts[key] = Shown(
            item, item.contract.metadata.generation, True, dict(deployment.revisions)
        )
        await _show(runtime, key, stations)
    return results


@kopf.on.resume(GROUP, VERSION, CONTRACTS, backoff=RETRY_S)
@kopf.on.create(GROUP, VERSION, CONTRACTS, backoff=RETRY_S)
@kopf.on.update(GROUP, VERSION, CONTRACTS, backoff=RETRY_S)  # type: ignore[arg-type]  # indexes come as kwargs
async def contract_changed(
    *,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """Deploy a new or edited contract; an invalid one degrades and leaves stations as they were."""
    runtime: Runtime = memo.smart
    try:
        contract = SmartContract.model_validate(_plain(body))
    except pydantic.ValidationError as err:  # the CRD schema keeps these out; a stale CRD may not
        metrics.RECONCILES.labels("smartcontract", "degraded").inc()
        raise kopf.PermanentError(f"contract {name}: {err}") from err
    async with runtime.lock:
        # Read under the lock: a station deleted while this handler waited is out of the index by now.
        stations = list(station_index.get(namespace, []))
        others = [c for c in contract_index.get(namespace, []) if c.metadata.name != name]
        results = await _reconcile(
            runtime,
            namespace,
            sorted([*others, contract], key=lambda c: c.metadata.name),
            stations,
            shown={**{c.metadata.name: dict(c.status or {}) for c in others}, name: dict(body.status)},
            resource="smartcontract",
        )
    for item, deployment in results:
        if item.name != name:
            continue
        if item.held_back and item.verdict is not None and item.verdict.submitted is not None:
            kopf.info(
                body,
                reason=approval.PENDING,
                message=f"revision {item.verdict.revision[:12]} waits for {item.verdict.waiting_for}",
            )
        elif deployment is None and item.invalid is not None:
            kopf.warn(body, reason="InvalidContract", message=(item.invalid or "")[:1000])
        elif deployment is not None:
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


@kopf.on.delete(GROUP, VERSION, CONTRACTS, backoff=RETRY_S)  # type: ignore[arg-type]
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
        stations = list(station_index.get(namespace, []))
        retired = await reconcile.retire(name, store=runtime.store, log_=runtime.log)
        runtime.contracts.pop(_key(namespace, name), None)
        runtime.written.pop(_key(namespace, name), None)
        await _record_on_stations(namespace, name, stations, dict.fromkeys(retired))
        others = [c for c in contract_index.get(namespace, []) if c.metadata.name != name]
        await _apply_workloads(namespace, others, stations)
    metrics.RECONCILES.labels("smartcontract", "retired").inc()


@kopf.on.resume(GROUP, VERSION, STATIONS, backoff=RETRY_S)
@kopf.on.create(GROUP, VERSION, STATIONS, backoff=RETRY_S)
@kopf.on.update(GROUP, VERSION, STATIONS, backoff=RETRY_S)
@kopf.on.delete(GROUP, VERSION, STATIONS, backoff=RETRY_S)  # type: ignore[arg-type]
async def station_changed(
    *,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    reason: str,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """A station came, went or changed labels: redeploy every contract so selections stay right.

    Deletion holds the Station's finalizer until its bundles are retired (``contract.retired``),
    its node's module labels dropped and the contracts it was in updated.
    """
    runtime: Runtime = memo.smart
    leaving = reason == "delete" or bool(body.metadata.get("deletionTimestamp"))
    async with runtime.lock:
        stations = [s for s in station_index.get(namespace, []) if s.metadata.name != name]
        if not leaving:
            try:
                stations.append(Station.model_validate(_plain(body)))
            except pydantic.ValidationError as err:
                kopf.warn(body, reason="InvalidStation", message=str(err)[:1000])
                return
        contracts = sorted(contract_index.get(namespace, []), key=lambda c: c.metadata.name)
        results = await _reconcile(
            runtime,
            namespace,
            contracts,
            stations,
            shown={c.metadata.name: dict(c.status or {}) for c in contracts},
            resource="station",
        )
    for item, deployment in results:
        if deployment is not None:
            _announce(_reference(item.contract), deployment)
    if leaving:
        log.info("station retired", station=name, namespace=namespace or "default")


@kopf.on.event("", "v1", "nodes")  # type: ignore[arg-type]  # indexes come as kwargs
async def node_changed(
    *,
    event: kopf.RawEvent,
    body: kopf.Body,
    name: str,
    memo: kopf.Memo,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """A Node's labels changed (a station's label put on a Pi, or taken off): place the modules again.

    A Station binds to the nodes its ``nodeSelector`` matches, so a node gaining a station's label
    must get that station's module labels (its DaemonSet pods start there), and a node losing it
    must lose them; each contract's status is written again from the new placement. Only the
    labels a selector can match count: the operator's own ``smart.aero/module.*`` labels (its own
    patches, echoed back by the watch) change nothing. A raw watch event, not a change handler:
    kopf keeps no state on the Node, so the operator never writes anything there but those labels.
    """
    runtime: Runtime | None = getattr(memo, "smart", None)
    placement = {
        key: value
        for key, value in (body.metadata.labels or {}).items()
        if not key.startswith(workloads.NODE_LABEL_PREFIX)
    }
    seen = _nodes_seen.get(name)
    if event.get("type") == "DELETED":
        _nodes_seen.pop(name, None)  # its pods go with it; nothing to relabel
        return
    _nodes_seen[name] = placement
    if runtime is None or (seen is None and event.get("type") is None) or seen == placement:
        return  # the first listing (the resume handlers place from it), or only module labels moved
    log.info("node labels changed", node=name, labels=placement)
    async with runtime.lock:
        for namespace in list(contract_index):
            contracts = sorted(contract_index.get(namespace, []), key=lambda c: c.metadata.name)
            stations = list(station_index.get(namespace, []))
            await _apply_workloads(namespace, contracts, stations)
            for contract in contracts:
                await _show(runtime, _key(namespace, contract.metadata.name), stations)


#: Each Node's placement labels (all but the operator's module labels) as last seen by the watch.
_nodes_seen: dict[str, dict[str, str]] = {}


async def _authors(runtime: Runtime, contracts: Sequence[SmartContract]) -> dict[str, approval.Signature]:
    """Each contract's verified authorship signature (its annotation); one that fails is no author."""
    signed = [c for c in contracts if c.metadata.annotations.get(AUTHOR_ANNOTATION)]
    if not signed or runtime.keys is None:
        return {}
    try:
        checker = await approval.verifier(runtime.nats.jetstream(), runtime.keys)
    except approval.ApprovalRefused as err:
        log.warning("authors not verified", error=str(err))
        return {}
    found: dict[str, approval.Signature] = {}
    now = datetime.datetime.now(datetime.UTC)
    for contract in signed:
        name = contract.metadata.name
        try:
            found[name] = approval.read_signature(
                contract.metadata.annotations[AUTHOR_ANNOTATION],
                verifier=checker,
                now=now,
                act="authorship",
                contract=name,
                revision=approval.spec_revision(contract),
            )
        except approval.ApprovalRefused as err:
            log.warning("author not proven", contract=name, error=str(err))
    return found


@kopf.on.resume(GROUP, VERSION, APPROVALS, backoff=RETRY_S)
@kopf.on.create(GROUP, VERSION, APPROVALS, backoff=RETRY_S)  # type: ignore[arg-type]  # indexes come as kwargs
async def approval_created(
    *,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    namespace: str | None,
    memo: kopf.Memo,
    patch: kopf.Patch,
    station_index: kopf.Index[str | None, Station],
    contract_index: kopf.Index[str | None, SmartContract],
    **_: Any,
) -> None:
    """The distribution gate's key: verify a ContractApproval, record it, then deploy what it allows.

    Judged once: an approval whose status says accepted or refused is left alone (a restart, a
    replay). A refusal changes nothing but the approval's own status and a Warning event.
    """
    if status.get("accepted") in ("True", "False"):
        return
    runtime: Runtime = memo.smart
    try:
        wanted = ContractApprovalSpec.model_validate(dict(spec))
    except pydantic.ValidationError as err:
        _refuse(body, patch, f"the approval is malformed: {err.errors()[0]['msg']}")
        return
    async with runtime.lock:
        contract = next(
            (c for c in contract_index.get(namespace, []) if c.metadata.name == wanted.contract), None
        )
        if contract is None or runtime.approvals is None or runtime.keys is None:
            _refuse(body, patch, f"no SmartContract {wanted.contract} in namespace {namespace or 'default'}")
            return
        try:
            signature = approval.read_signature(
                wanted.credential,
                verifier=await approval.verifier(runtime.nats.jetstream(), runtime.keys),
                now=datetime.datetime.now(datetime.UTC),
                act="approval",
                contract=wanted.contract,
                revision=wanted.revision,
            )
            await reconcile.approve(contract, signature, approvals=runtime.approvals, log_=runtime.log)
        except approval.ApprovalRefused as err:
            _refuse(body, patch, str(err))
            return
        patch.status["accepted"] = "True"
        patch.status["approver"] = signature.badge
        patch.status["authority"] = signature.authority
        patch.status["message"] = f"revision {wanted.revision[:12]} of {wanted.contract} approved"
        stations = list(station_index.get(namespace, []))
        contracts = sorted(contract_index.get(namespace, []), key=lambda c: c.metadata.name)
        results = await _reconcile(
            runtime,
            namespace,
            contracts,
            stations,
            shown={c.metadata.name: dict(c.status or {}) for c in contracts},
            resource="contractapproval",
        )
    kopf.info(body, reason="Approved", message=patch.status["message"])
    for item, deployment in results:
        if deployment is not None:
            _announce(_reference(item.contract), deployment)


def _refuse(body: kopf.Body, patch: kopf.Patch, message: str) -> None:
    patch.status["accepted"] = "False"
    patch.status["message"] = message[:1000]
    kopf.warn(body, reason="ApprovalRefused", message=message[:1000])
    log.warning("approval refused", approval=body.metadata.name, error=message)


def registry() -> kopf.OperatorRegistry:
    """The registry these handlers are in (kopf's default), for drivers that start kopf themselves."""
    return kopf.get_default_registry()
