"""HandoffCentral's release: a reviewed PO line and its traveler, into exactly the routed stations' records.

Releasing a line is the only way work reaches a station. The line must be
contract-reviewed as it is now (AS9100D 8.2.3) and have a traveler; each
station on the route gets, in the ``station-records`` bucket under
``<station>.<kind>.<id>`` (the keys stations read today,
:mod:`smart.node.records`), the PO line as that station needs it (released,
part, serials, the processes of its own operations, who reviewed the
contract, the flowdown its operation follows) and the approved procedure
revision each of its operations names. A station not on the route gets
nothing, and a station a new traveler revision no longer routes to has the
line withdrawn. Every record is checked as a station would read it before
any is written; the release is one entry on the ``handoff-central`` ledger
node naming the line's version, the traveler revision and each key, written
before any record goes out. A release is all or nothing: a put that still
fails after a retry (a station's subject refused, the server gone) undoes
the puts before it, and a ``po.line.release.rolled-back`` entry follows,
naming what had gone out (key and KV revision), what was put back, and
anything that could not be; the line stays unreleased.

What stations then do comes back through the ledger: :class:`FloorEvents`
indexes the receipts and shipments the stations allowed (``module.decision``
entries of verb ``receive`` or ``ship``), so part arrival (quantity and
serials at sr-1) and shipment are known to the hub from the stations' own
signed entries, never from what someone typed at the hub.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import nats.errors
import psycopg
import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from smart.contracts import facts as f
from smart.hub import log_index, migrations
from smart.hub.clients.models import LineView, Outcome
from smart.hub.clients.store import ClientManager, Refused
from smart.hub.service_log import ServiceLedger
from smart.hub.travelers.models import OperationView, TravelerView
from smart.hub.travelers.store import Travelers
from smart.ledger import hub_store
from smart.ledger.entry import Entry
from smart.node import records

log = structlog.get_logger("smart.hub.release")

SCHEMA = "handoff"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {"releases": "SELECT, INSERT", "floor_events": "SELECT, INSERT"}
RELEASE_KIND = "po.line.released"
#: A release that failed part-way, and what was undone (it follows the release entry it undoes).
ROLLED_BACK_KIND = "po.line.release.rolled-back"
#: Tries of each put before a release is rolled back.
PUBLISH_ATTEMPTS = 2
#: The decisions that move parts in and out of the shop, as the stations record them.
FLOOR_VERBS = ("receive", "ship")


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``handoff`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


def schema_url(url: str) -> str:
    """``url`` with ``handoff`` first on the search path (then ``public``, where the hub log is)."""
    return make_conninfo(url, options=f"-c search_path={SCHEMA},public")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StationRecord:
    station: str
    kind: str
    record_id: str
    value: Any

    @property
    def key(self) -> str:
        return records.record_key(self.station, self.kind, self.record_id)


def _reviewer(line: LineView) -> str | None:
    held = [r for r in line.reviews if r.line_version == line.version and r.outcome is Outcome.ACCEPTED]
    return held[-1].reviewer if held else None


def _flowdown(line: LineView, operation: OperationView) -> dict[str, str]:
    chosen = next((fd for fd in line.flowdowns if fd.spec == operation.spec), line.flowdowns[0])
    return {
        "spec": chosen.spec,
        "spec-revision": chosen.spec_revision,
        "class": chosen.class_,
        "acceptance-criteria": chosen.acceptance_criteria,
        "nadcap": "required" if chosen.nadcap_required else "not required",
        "retention": chosen.retention,
        "part-revision": line.part_revision,
    }


def station_records(
    line: LineView, traveler: TravelerView, procedures: Mapping[str, Any]
) -> list[StationRecord]:
    """What each routed station needs of this line, checked as the station will read it."""
    reviewer = _reviewer(line)
    found: list[StationRecord] = []
    for station in traveler.stations():
        operations = [op for op in traveler.operations if op.station == station]
        flowdowns = {
            **_flowdown(line, operations[0]),
            "traveler-revision": str(traveler.revision),
            "operations": ",".join(f"{op.seq}:{op.process}" for op in operations),
        }
        po_line = f.PoLine(
            po=line.po,
            line=line.line,
            released=True,
            part=line.part,
            serials=tuple(line.serials),
            operations=tuple(op.process for op in operations),
            contract_reviewed_by=reviewer,
            flowdowns=flowdowns,
        )
        found.append(StationRecord(station, "po-line", records.fact_key("po-line", po_line), po_line))
        for op in operations:
            procedure = procedures[op.procedure]
            value = f.Procedure(
                id=procedure.id,
                revision=procedure.revision,
                method=procedure.method,
                approved_by=procedure.approved_by,
                validated=procedure.validated,
            )
            found.append(StationRecord(station, "procedure", value.id, value))
    for record in found:
        records.parse(record.kind, records.plain(record.value))  # refused here, never at a station
    return found


@dataclass(frozen=True, slots=True)
class Released:
    po: str
    line: str
    line_version: int
    traveler_revision: int
    stations: tuple[str, ...]
    keys: Mapping[str, int]
    withdrawn: tuple[str, ...]
    released_by: str
    released_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "po": self.po,
            "line": self.line,
            "lineVersion": self.line_version,
            "travelerRevision": self.traveler_revision,
            "stations": list(self.stations),
            "keys": dict(self.keys),
            "withdrawn": list(self.withdrawn),
            "releasedBy": self.released_by,
            "releasedAt": self.released_at.isoformat(),
        }


class HandoffRelease:
    """Releases lines to the stations over JetStream, records it, and remembers what went where."""

    def __init__(
        self,
        url: str,
        *,
        clients: ClientManager,
        travelers: Travelers,
        js: JetStreamContext,
        ledger: ServiceLedger,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.url = schema_url(url)
        self.pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=2,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.Connection[DictRow],
            open=True,
        )
        self.clients = clients
        self.travelers = travelers
        self.js = js
        self.ledger = ledger
        self.clock = clock
        self._bucket: KeyValue | None = None

    def close(self) -> None:
        self.pool.close()

    def _connect(self) -> AbstractContextManager[psycopg.Connection[DictRow]]:
        return self.pool.connection()

    async def _records_bucket(self) -> KeyValue:
        if self._bucket is None:
            await records.ensure_records_bucket(self.js)
            self._bucket = await self.js.key_value(records.RECORDS_BUCKET)
        return self._bucket

    def _last(self, po: str, line: str) -> DictRow | None:
        conn: psycopg.Connection[DictRow]
        with self._connect() as conn:
            return conn.execute(
                "SELECT * FROM releases WHERE po = %s AND line = %s ORDER BY id DESC LIMIT 1", (po, line)
            ).fetchone()

    def releases(self, po: str, line: str) -> list[Released]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM releases WHERE po = %s AND line = %s ORDER BY id", (po, line)
            ).fetchall()
        return [_released(row) for row in rows]

    async def release(self, po: str, line: str, *, actor: str) -> Released:
        """Release the line as it is now; :class:`Refused` names what stops it, and nothing is written."""
        held = await run_in_threadpool(self.clients.line, po, line)
        if held is None:
            raise Refused("line", f"PO {po} has no line {line}")
        if not held.reviewed:
            reopened = " (it changed since its review)" if held.reviews else ""
            raise Refused(
                "review", f"PO {po} line {line} is not contract-reviewed{reopened}; review it first"
            )
        traveler = await run_in_threadpool(self.travelers.latest, po, line)
        if traveler is None:
            raise Refused("traveler", f"PO {po} line {line} has no traveler; route it first")
        procedures: dict[str, Any] = {}
        for index, op in enumerate(traveler.operations):
            current = await run_in_threadpool(self.travelers.procedure, op.procedure)
            if current is None or current.revision != op.procedure_revision:
                raise Refused(
                    f"traveler.operations[{index}].procedure_revision",
                    f"procedure {op.procedure} rev {op.procedure_revision} "
                    "is no longer the approved revision",
                )
            procedures[op.procedure] = current
        wanted = station_records(held, traveler, procedures)
        previous = await run_in_threadpool(self._last, po, line)
        still = {r.key for r in wanted}
        # the PO line leaves a station no longer on the route; a procedure may serve other lines there
        withdraw = [
            key
            for key in (previous["records"] if previous is not None else ())
            if key not in still and _split_key(key)[1] == "po-line"
        ]
        stations = tuple(traveler.stations())
        at = self.clock()
        # The ledger says what is released before any station has it: nothing reaches a station unrecorded.
        intent: Entry = await run_in_threadpool(
            self.ledger.append,
            kind=RELEASE_KIND,
            subject=f"{po}/{line}",
            data={
                "po": po,
                "line": line,
                "lineVersion": held.version,
                "travelerRevision": traveler.revision,
                "stations": list(stations),
                "keys": sorted(still),
                "withdrawn": withdraw,
                "releasedBy": actor,
                "releasedAt": at.isoformat(),
            },
            actor=actor,
        )
        # All or nothing: a put or delete that fails after its retries undoes the ones before it, and
        # the ledger says so (which keys went out, which were put back), so no entry claims a release
        # that only some stations hold.
        keys, withdrawn = await self._publish(
            po, line, wanted, withdraw, released_entry=intent.node_seq, actor=actor
        )
        released = Released(po, line, held.version, traveler.revision, stations, keys, withdrawn, actor, at)
        await run_in_threadpool(self._recorded, released)
        log.info(
            "handoff_central.released",
            po=po,
            line=line,
            stations=list(stations),
            traveler=traveler.revision,
            line_version=held.version,
        )
        return released

    async def _publish(
        self,
        po: str,
        line: str,
        wanted: list[StationRecord],
        withdraw: list[str],
        *,
        released_entry: int,
        actor: str,
    ) -> tuple[dict[str, int], tuple[str, ...]]:
        """Put every record and withdraw every dropped key, or put back what was done and refuse."""
        bucket = await self._records_bucket()
        done: list[tuple[str, KeyValue.Entry | None]] = []  # each key changed, and what it held before
        keys: dict[str, int] = {}
        steps: list[tuple[str, bytes | None]] = [
            (r.key, json.dumps(records.plain(r.value), ensure_ascii=False, sort_keys=True).encode())
            for r in wanted
        ]
        steps.extend((key, None) for key in withdraw)
        for key, payload in steps:
            try:
                before = await self._held(bucket, key)
            except (nats.errors.Error, TimeoutError, OSError) as err:
                await self._roll_back(po, line, bucket, done, keys, steps, key, err, released_entry, actor)
            try:
                revision = await self._attempt(bucket, key, payload)
            except (nats.errors.Error, TimeoutError, OSError) as err:
                # a put whose answer was lost may have landed: then it is put back with the others
                landed = await self._landed(bucket, key, before)
                await self._roll_back(
                    po, line, bucket, [*done, *landed], keys, steps, key, err, released_entry, actor
                )
            done.append((key, before))
            if revision is not None:
                keys[key] = revision
        return keys, tuple(withdraw)

    async def _held(self, bucket: KeyValue, key: str) -> KeyValue.Entry | None:
        try:
            return await bucket.get(key)
        except KeyNotFoundError:  # never put, or withdrawn (deleted) before
            return None

    async def _landed(
        self, bucket: KeyValue, key: str, before: KeyValue.Entry | None
    ) -> list[tuple[str, KeyValue.Entry | None]]:
        """``[(key, before)]`` when the key changed since ``before`` (or cannot be read), else ``[]``."""
        try:
            now = await self._held(bucket, key)
        except (nats.errors.Error, TimeoutError, OSError):
            return [(key, before)]
        same = (now is None and before is None) or (
            now is not None and before is not None and now.revision == before.revision
        )
        return [] if same else [(key, before)]

    async def _attempt(self, bucket: KeyValue, key: str, payload: bytes | None) -> int | None:
        """One put (or delete, for ``None``), tried :data:`PUBLISH_ATTEMPTS` times; its KV revision."""
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                if payload is None:
                    await bucket.delete(key)
                    return None
                return int(await bucket.put(key, payload))
            except (nats.errors.Error, TimeoutError, OSError) as err:
                log.warning(
                    "handoff_central.publish_retry", key=key, attempt=attempt, error=type(err).__name__
                )
                if attempt == PUBLISH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _roll_back(
        self,
        po: str,
        line: str,
        bucket: KeyValue,
        done: list[tuple[str, KeyValue.Entry | None]],
        keys: Mapping[str, int],
        steps: list[tuple[str, bytes | None]],
        failed: str,
        err: BaseException,
        released_entry: int,
        actor: str,
    ) -> NoReturn:
        """Undo the changes made so far (newest first), record exactly what happened, and refuse."""
        restored: list[str] = []
        still: dict[str, int | None] = {}
        for key, before in reversed(done):
            try:
                if before is None or before.value is None:
                    await bucket.delete(key)
                else:
                    await bucket.put(key, before.value)
                restored.append(key)
            except (nats.errors.Error, TimeoutError, OSError):
                still[key] = keys.get(key)  # the station may hold this; the entry says which revision
        changed = {key for key, _ in done if key != failed}
        unreached = [key for key, _ in steps if key not in changed]
        await run_in_threadpool(
            self.ledger.append,
            kind=ROLLED_BACK_KIND,
            subject=f"{po}/{line}",
            data={
                "po": po,
                "line": line,
                "release": released_entry,
                "published": dict(keys),
                "failedAt": failed,
                "unreached": unreached,
                "restored": restored,
                "stillHeld": still,
                "error": f"{type(err).__name__}: {err}",
            },
            actor=actor,
        )
        stations = sorted({_split_key(key)[0] for key in unreached})
        log.error(
            "handoff_central.release_rolled_back",
            po=po,
            line=line,
            failed=failed,
            restored=len(restored),
            still_held=list(still),
            error=type(err).__name__,
        )
        left = f"; {', '.join(still)} could not be put back (on the ledger)" if still else ""
        raise Refused(
            "stations",
            f"release of PO {po} line {line} did not reach {', '.join(stations)} "
            f"({type(err).__name__}); what had gone out was rolled back{left}; release it again",
        ) from err

    def _recorded(self, released: Released) -> None:
        with self._connect() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO releases (po, line, line_version, "
                "traveler_revision, stations, records, withdrawn, "
                "released_by, released_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    released.po,
                    released.line,
                    released.line_version,
                    released.traveler_revision,
                    list(released.stations),
                    json.dumps(dict(released.keys)),
                    json.dumps(list(released.withdrawn)),
                    released.released_by,
                    released.released_at,
                ),
            )
        self.travelers.mark_released(
            released.po,
            released.line,
            released.traveler_revision,
            actor=released.released_by,
            at=released.released_at,
        )
        self.clients.mark_released(
            released.po, released.line, version=released.line_version, at=released.released_at
        )


def _split_key(key: str) -> tuple[str, str, str]:
    station, _, rest = key.partition(".")
    kind, _, record_id = rest.partition(".")
    return station, kind, record_id


def _released(row: DictRow) -> Released:
    return Released(
        po=row["po"],
        line=row["line"],
        line_version=row["line_version"],
        traveler_revision=row["traveler_revision"],
        stations=tuple(row["stations"]),
        keys=dict(row["records"]),
        withdrawn=tuple(row["withdrawn"]),
        released_by=row["released_by"],
        released_at=row["released_at"],
    )


# -- what comes back from the floor ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FloorEvent:
    """A receipt or shipment a station allowed, and where its entry is in the hub log."""

    station: str
    verb: str
    job: str | None
    po: str | None
    line: str | None
    serials: tuple[str, ...]
    quantity: int | None
    at: datetime
    ledger_idx: int

    def to_json(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "verb": self.verb,
            "job": self.job,
            "po": self.po,
            "line": self.line,
            "serials": list(self.serials),
            "quantity": self.quantity,
            "at": self.at.isoformat(),
            "ledgerIndex": self.ledger_idx,
        }


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class FloorEvents(log_index.LogIndex):
    """Indexes the stations' allowed ``receive`` and ``ship`` decisions (part arrival, shipment)."""

    kinds = ("module.decision",)
    table = "floor_events"

    @classmethod
    def connect(cls, url: str) -> FloorEvents:
        scoped = schema_url(url)
        return cls(psycopg.connect(scoped, autocommit=True), url=scoped)

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        verb = data.get("verb")
        if verb not in FLOOR_VERBS or data.get("outcome") != "allow":
            return 0
        event = data.get("event") if isinstance(data.get("event"), dict) else {}
        assert isinstance(event, dict)
        scan = event.get("scan") if isinstance(event.get("scan"), dict) else {}
        assert isinstance(scan, dict)
        effects = data.get("effects") if isinstance(data.get("effects"), dict) else {}
        assert isinstance(effects, dict)
        quantities = effects.get("quantities") if isinstance(effects.get("quantities"), dict) else {}
        assert isinstance(quantities, dict)
        counted = quantities.get("received" if verb == "receive" else "accepted")
        serials = [str(s) for s in effects.get("serials", []) if isinstance(s, str)] or (
            [scan["serial"]] if isinstance(scan.get("serial"), str) else []
        )
        at = _time(event.get("at")) or _time(entry.ts)
        assert at is not None
        inserted = self.conn.execute(
            "INSERT INTO floor_events (ledger_idx, station, verb, job, "
            "po, line, serials, quantity, at, node_seq, "
            "entry_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                idx,
                entry.node,  # the station is the node that signed the entry
                verb,
                event.get("job") or effects.get("job"),
                scan.get("po"),
                scan.get("line"),
                serials,
                counted if isinstance(counted, int) else None,
                at,
                entry.node_seq,
                entry.hash,
            ),
        ).rowcount
        if inserted:
            log.info(
                "handoff_central.floor_event", station=entry.node, verb=verb, po=scan.get("po"), index=idx
            )
        return 1 if inserted else 0


def floor_events(conn: psycopg.Connection[Any], *, po: str, line: str | None = None) -> list[FloorEvent]:
    rows = conn.execute(
        "SELECT station, verb, job, po, line, serials, quantity, at, ledger_idx FROM handoff.floor_events "
        "WHERE po = %s AND (%s::text IS NULL OR line = %s) ORDER BY ledger_idx",
        (po, line, line),
    ).fetchall()
    return [
        FloorEvent(
            station=r[0],
            verb=r[1],
            job=r[2],
            po=r[3],
            line=r[4],
            serials=tuple(r[5] or ()),
            quantity=r[6],
            at=r[7],
            ledger_idx=int(r[8]),
        )
        for r in rows
    ]


def arrivals(conn: psycopg.Connection[Any], *, po: str, line: str) -> list[FloorEvent]:
    """What the receiving station reported arrived for the line: quantity and serials, from its entries."""
    return [e for e in floor_events(conn, po=po, line=line) if e.verb == "receive"]
