"""``smart apply``, ``smart get`` and ``smart contract approve`` on the embedded floor.

Manifests → reconcile core → KV and ledger, as the operator does it. A changed contract is held
by the core's two-person gate until ``approve`` records a second person's verified signature; the
approvals live in the hub's ``contract-approvals`` bucket, the same record the operator keeps.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from smart import ledger
from smart.bus import at_once, buckets
from smart.contracts import approval, distribution, manifests, reconcile, semantics
from smart.contracts.manifests import Manifest
from smart.contracts.models import SmartContract, SmartContractStatus, Station
from smart.keys import KeyStore
from smart.settings import Settings

log = structlog.get_logger("smart.embedded")

MANIFESTS_BUCKET = "smart-manifests"
LEDGER_NODE = "smart-embedded"


@dataclass(frozen=True, slots=True)
class Applied:
    kind: str
    name: str
    outcome: str


def hub_url(settings: Settings) -> str:
    return settings.nats_url or f"nats://{settings.host}:{settings.nats_port}"


async def _manifests_bucket(connection: NatsClient) -> KeyValue:
    js = connection.jetstream()
    try:
        return await js.key_value(MANIFESTS_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=MANIFESTS_BUCKET, history=5))


async def _records(kv: KeyValue, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(value) for value in (await buckets.live_entries(kv, f"{prefix}.>")).values()]


async def apply(
    manifests: Sequence[Manifest],
    settings: Settings,
    *,
    author: str | None = None,
    bootstrap: approval.Bootstrap | None = None,
    waiting: bool = False,
) -> list[Applied]:
    """Store stations, then deploy every contract (new and stored) over all known stations.

    ``author`` is the author's SMART-ID signature (a token) on the revision of each contract named;
    a bad one raises :class:`~smart.contracts.approval.ApprovalRefused` before anything is stored.
    A contract's first revision waits for a second person like any change, except on ``bootstrap``:
    the floor's first seeding, refused (changing nothing) on a floor seeded before, recorded as
    ``contract.bootstrapped`` per contract, and marking the floor seeded. A person ``waiting`` on it
    gets one try at the hub NATS (:func:`connect_at_once`): no floor raises
    :class:`~smart.bus.at_once.HubUnreachable` before anything is stored.
    """
    if bootstrap is not None and await _seeded(settings, waiting=waiting):
        raise approval.ApprovalRefused(
            "this floor was seeded before: a bootstrap happens once, on the first start; "
            "a contract's first revision now waits for a second person (smart contract approve)"
        )
    keys = KeyStore(settings.key_directory)
    connection = await _connect(settings, name="smart-apply", waiting=waiting)
    log_ = ledger.NodeLog.open(settings.state_dir / "ledger", node=LEDGER_NODE, keys=keys)
    try:
        key = keys.signing_key("hub")
        kv = await _manifests_bucket(connection)
        store = distribution.KvBundleStore(await distribution.bucket(connection.jetstream()))
        approvals = approval.KvApprovalStore(await approval.bucket(connection.jetstream()))
        authors: dict[str, approval.Signature] = {}
        if author is not None:
            checker = await approval.verifier(connection.jetstream(), keys)
            now = datetime.datetime.now(datetime.UTC)
            for contract in (m for m in manifests if isinstance(m, SmartContract)):
                authors[contract.metadata.name] = approval.read_signature(
                    author,
                    verifier=checker,
                    now=now,
                    act="authorship",
                    contract=contract.metadata.name,
                    revision=approval.spec_revision(contract),
                )
        applied: list[Applied] = []
        for manifest in manifests:
            if isinstance(manifest, Station):
                await kv.put(f"station.{manifest.metadata.name}", _record(manifest, None))
                applied.append(Applied("Station", manifest.metadata.name, "configured"))
        stations = [Station.model_validate(r["manifest"]) for r in await _records(kv, "station")]
        named = [m for m in manifests if isinstance(m, SmartContract)]
        stored = [SmartContract.model_validate(r["manifest"]) for r in await _records(kv, "contract")]
        chosen = {c.metadata.name: c for c in stored}
        chosen.update({c.metadata.name: c for c in named})
        named_names = {c.metadata.name for c in named}
        shown: dict[str, SmartContractStatus] = {}

        async def before(planned: Sequence[reconcile.Planned]) -> None:
            """The manifest store shows each contract's status before any bundle goes out."""
            for item in planned:  # a contract named on the command line must be right: refuse, touch nothing
                if item.invalid is not None and item.name in named_names:
                    semantics.check(item.name, item.contract.spec)  # raises with the full error
            for item in planned:
                held = await store.revisions(item.name)
                status = _status(item, distributed=item.invalid is None and held == item.revisions, held=held)
                shown[item.name] = status
                await kv.put(f"contract.{item.name}", _record(item.contract, status))

        results = await reconcile.deploy_all(
            list(chosen.values()),
            stations,
            key=key,
            store=store,
            log_=log_,
            actor=LEDGER_NODE,
            before=before,
            approvals=approvals,
            authors=authors,
            bootstrap=bootstrap,
        )
        if bootstrap is not None:
            await _mark_seeded(connection, bootstrap, manifests)
        for item, deployment in results:
            name = item.name
            if item.held_back and item.verdict is not None:
                if name in named_names:
                    applied.append(
                        Applied(
                            "SmartContract",
                            name,
                            f"pending approval: revision {item.verdict.revision[:12]} waits for "
                            f"{item.verdict.waiting_for}; stations keep their previous revision",
                        )
                    )
                continue
            if deployment is None:
                applied.append(Applied("SmartContract", name, f"degraded: {item.invalid}"))
                continue
            status = _status(item, distributed=True, held=deployment.revisions, previous=shown[name])
            await kv.put(f"contract.{name}", _record(item.contract, status))
            if item.contract in named:
                seeded = item.verdict is not None and item.verdict.bootstrapped is not None
                applied.append(
                    Applied(
                        "SmartContract",
                        name,
                        f"synced {deployment.synced}/{deployment.desired}"
                        + (" (bootstrapped: first revision, no second person)" if seeded else ""),
                    )
                )
        return applied
    finally:
        log_.close()
        await connection.close()


def nats_address(settings: Settings) -> str:
    """The hub NATS as host and port, for what a person reads: never the URL's password."""
    return at_once.address(hub_url(settings), default_port=at_once.NATS_PORT)


async def connect_at_once(settings: Settings, *, name: str) -> NatsClient:
    """The driver's connection to the hub NATS, tried once; no floor there raises ``HubUnreachable``.

    For what a person waits on (``smart apply``, ``get``, ``contract approve|history``, the hub's
    approval page): each says at once where it tried and that nothing changed. What runs for
    days (``smart up``'s start hook) keeps nats-py's retries (:func:`_connect`).
    """
    return await at_once.connect(
        hub_url(settings),
        name=name,
        signin=settings.hub_nats_signin(),
        what="the embedded floor's NATS",
        who="the driver's",
        advice=at_once.START_THE_FLOOR,
    )


async def _connect(settings: Settings, *, name: str, waiting: bool) -> NatsClient:
    """The driver's connection: one try when a person is ``waiting``, else nats-py's retries."""
    if waiting:
        return await connect_at_once(settings, name=name)
    return await nats.connect(hub_url(settings), name=name, **settings.hub_nats_signin())


async def approve(name: str, revision: str, token: str, settings: Settings) -> list[Applied]:
    """A second person's approval of ``name``'s pending ``revision``, then the deploy it allows.

    ``token`` is the approver's SMART-ID signature on that revision. Refused (raising
    :class:`~smart.contracts.approval.ApprovalRefused`, changing nothing) for the author, someone
    without the contract's authority, a bad signature or a revision that is not the pending one;
    a floor that does not answer the first try raises :class:`~smart.contracts.approval.FloorUnreachable`
    at once (a person is waiting), before anything is read or written.
    """
    keys = KeyStore(settings.key_directory)
    try:
        connection = await connect_at_once(settings, name="smart-approve")
    except at_once.HubUnreachable as err:
        raise approval.FloorUnreachable(
            err.said, where=err.where, advice="Start the floor (smart up) and approve again"
        ) from err.__cause__
    try:
        kv = await _manifests_bucket(connection)
        stored = {r["manifest"]["metadata"]["name"]: r for r in await _records(kv, "contract")}
        if name not in stored:
            raise approval.ApprovalRefused(f"no contract {name} on this floor")
        contract = SmartContract.model_validate(stored[name]["manifest"])
        approvals = approval.KvApprovalStore(await approval.bucket(connection.jetstream()))
        record = await approvals.get(name)
        full = _full_revision(record, revision)
        signature = approval.read_signature(
            token,
            verifier=await approval.verifier(connection.jetstream(), keys),
            now=datetime.datetime.now(datetime.UTC),
            act="approval",
            contract=name,
            revision=full,
        )
        with ledger.NodeLog.open(settings.state_dir / "ledger", node=LEDGER_NODE, keys=keys) as log_:
            await reconcile.approve(contract, signature, approvals=approvals, log_=log_, actor=LEDGER_NODE)
    finally:
        await connection.close()
    applied = await apply([], settings)
    return [Applied("SmartContract", name, f"approved revision {full[:12]}"), *applied]


def _full_revision(record: approval.Record | None, given: str) -> str:
    """The full revision a person named by its first characters (at least 8), else refused."""
    if len(given) < 8:
        raise approval.ApprovalRefused(f"revision {given!r} is too short: give at least 8 characters")
    known = [r.revision for r in (record.revisions if record else ()) if r.revision.startswith(given)]
    if len(known) != 1:
        raise approval.ApprovalRefused(
            f"revision {given} is not the pending one "
            f"(pending: {record.pending[:12] if record and record.pending else 'none'})"
        )
    return known[0]


async def approval_records(settings: Settings, *, waiting: bool = False) -> list[approval.Record]:
    """Every contract's revisions, authors and approvals (PolicyCentral's history)."""
    connection = await _connect(settings, name="smart-history", waiting=waiting)
    try:
        return await approval.KvApprovalStore(await approval.bucket(connection.jetstream())).all()
    finally:
        await connection.close()


def _status(
    item: reconcile.Planned,
    *,
    distributed: bool,
    held: Mapping[str, str],
    previous: SmartContractStatus | None = None,
) -> SmartContractStatus:
    """The same typed status the operator writes; nobody listens to heartbeats here, so no Ready yet."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return reconcile.contract_status(
        item,
        generation=item.contract.metadata.generation,
        distributed=distributed,
        active=None,
        held=held,
        previous=previous,
        now=now,
    )


def _record(manifest: Manifest, status: SmartContractStatus | None) -> bytes:
    body = manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
    shown = status.model_dump(mode="json", by_alias=True, exclude_none=True) if status else {}
    return json.dumps({"manifest": body, "status": shown}, sort_keys=True).encode()


async def get(kind: str, settings: Settings, *, waiting: bool = False) -> list[dict[str, Any]]:
    """Stored contracts or stations with their status (``kind``: contract or station)."""
    connection = await _connect(settings, name="smart-get", waiting=waiting)
    try:
        return await _records(await _manifests_bucket(connection), kind)
    finally:
        await connection.close()


#: The manifests bucket's key saying the floor's contracts were seeded from a directory once.
SEEDED_KEY = "floor.seeded"


async def load_contracts(settings: Settings, directory: Path) -> list[Applied]:
    """``smart up``'s start hook: seed ``directory`` on the first start only; problems never fatal.

    The hub's state wins over a directory: once seeded, a later start applies nothing from it and
    only reconciles what the hub holds, so a revision someone replaced (``smart apply``) or one
    waiting for approval stays as it is; the outcome says, per contract, what is in force and
    whether the directory's copy differs. A floor whose contracts do not load still starts: its
    stations hold no valid bundle and fail closed, saying why, which is what the shop needs to see.
    """
    loaded = await asyncio.to_thread(_read, directory)
    try:
        seeded = await _seeded(settings)
        if seeded:
            applied = await apply([], settings)
            applied = [*applied, *(await _kept(settings, loaded, directory))]
        elif loaded:
            first_start = approval.Bootstrap(
                by="smart up (first start)", user=os_user(), source=f"{directory}/"
            )
            applied = [
                Applied(a.kind, a.name, f"seeded from {directory}/: {a.outcome}")
                for a in await apply(loaded, settings, bootstrap=first_start)
            ]
        else:
            applied = []
    except Exception as err:  # a start hook must never take the floor down; it says why instead
        log.error("contracts not applied", directory=str(directory), error=str(err))
        return []
    for item in applied:
        log.info("contract loaded", kind=item.kind, name=item.name, outcome=item.outcome)
    return applied


async def _seeded(settings: Settings, *, waiting: bool = False) -> bool:
    """Seeded before: the marker is there, or (a floor from before the marker) contracts are stored."""
    connection = await _connect(settings, name="smart-seed", waiting=waiting)
    try:
        kv = await _manifests_bucket(connection)
        try:
            marker = await kv.get(SEEDED_KEY)
            if marker.value:
                return True
        except nats.js.errors.KeyNotFoundError:
            pass
        return bool(await _records(kv, "contract"))
    finally:
        await connection.close()


async def _mark_seeded(
    connection: NatsClient, bootstrap: approval.Bootstrap, loaded: Sequence[Manifest]
) -> None:
    kv = await _manifests_bucket(connection)
    now = datetime.datetime.now(datetime.UTC).isoformat()
    revisions = {m.metadata.name: approval.spec_revision(m) for m in loaded if isinstance(m, SmartContract)}
    await kv.put(SEEDED_KEY, json.dumps({"at": now, **bootstrap.json(), "contracts": revisions}).encode())


def os_user() -> str:
    """Who started the floor, as the operating system knows them (the bootstrap's ``user``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a bare container): say so rather than guess
        return f"uid {os.getuid()}"


async def _kept(settings: Settings, loaded: Sequence[Manifest], directory: Path) -> list[Applied]:
    """Per contract of the directory: the revision the hub keeps in force or pending, and if it differs."""
    records = {r.contract: r for r in await approval_records(settings)}
    stored = {r["manifest"]["metadata"]["name"]: r for r in await get("contract", settings)}
    found = []
    for contract in (m for m in loaded if isinstance(m, SmartContract)):
        name = contract.metadata.name
        record = records.get(name)
        in_dir = approval.spec_revision(contract)
        if name not in stored or record is None:
            found.append(
                Applied("SmartContract", name, "not applied: the floor was seeded before; use smart apply")
            )
            continue
        held = record.distributed or "none"
        text = f"kept revision {held[:12]} in force"
        if record.pending:
            text += f", revision {record.pending[:12]} pending approval"
        if in_dir not in (record.distributed, record.pending):
            text += f"; {directory}/ holds {in_dir[:12]}, not applied (the hub's state wins)"
        found.append(Applied("SmartContract", name, text))
    return found


def _read(directory: Path) -> list[Manifest]:
    if not directory.is_dir():
        return []
    try:
        return [item.manifest for item in manifests.load([directory])]
    except manifests.ManifestsInvalid as err:
        for error in err.errors:
            log.error("contract not loaded", problem=str(error))
        return []
