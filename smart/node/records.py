"""The records a station decides from: people, equipment, checks, lots, PO lines, procedures, jobs.

Two sources feed them. The hub owns people (what enforcement needs of
them, never more), equipment with its calibrations and surveys, lots, PO
lines and procedures: it puts each as JSON in the ``station-records`` KV
bucket under ``<station>.<kind>.<id>`` (:func:`publish_record`), the
station's leaf mirrors that bucket into the station's own JetStream domain
and the station materialises every change here. The station itself writes
what happens at it: the daily and shift checks, the jobs with their steps,
measurements, NCRs, signer and quantities, when a person last performed
a method, each consumable's use and open reorder signal (``stock``) and each
equipment's use toward its upkeep (``usage``); the hub also sets the
consumables' reorder terms (``material``). Each local write goes with a ledger entry (the caller records it).

Everything lives in one SQLite file beside the station store (WAL,
``synchronous=FULL``), so a station that restarts with no hub still holds
what it decided from. :meth:`StationRecords.facts` is the snapshot the rule
engine reads; it is built once per change and shared until the next one.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError
from pydantic import TypeAdapter, ValidationError

from smart.bus import messages
from smart.contracts import facts as f

#: The records' JSON codec lives with the bus messages; re-exported for the node's callers.
plain = messages.plain

RECORDS_BUCKET = "station-records"

#: Record kind → the facts type its JSON value must match.
KINDS: Mapping[str, type[Any]] = MappingProxyType(
    {
        "person": f.Person,
        "equipment": f.EquipmentRecord,
        "check": f.CheckRecord,
        "lot": f.Lot,
        "po-line": f.PoLine,
        "procedure": f.Procedure,
        "job": f.Job,
        # consumables' reorder terms (hub), their use and open reorder signal, equipment use counts
        "material": f.Material,
        "stock": f.StockRecord,
        "usage": f.UsageCount,
        # an NCR's disposition or closure decided at the hub (QACentral), keyed by the NCR's id
        "ncr-decision": f.NcrDecision,
    }
)
_ADAPTERS: Mapping[str, TypeAdapter[Any]] = MappingProxyType({k: TypeAdapter(t) for k, t in KINDS.items()})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    value TEXT NOT NULL,
    origin TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS hub_revisions (
    key TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS job_session (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    state TEXT NOT NULL,
    session TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS performed (
    person TEXT NOT NULL,
    method TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (person, method)
);
"""


class RecordError(ValueError):
    """A record's kind, key or value is not what a station can decide from; the message says which."""


def record_key(station: str, kind: str, record_id: str) -> str:
    """The ``station-records`` key of one record."""
    return f"{station}.{kind}.{record_id}"


def parse_key(station: str, key: str) -> tuple[str, str] | None:
    """``(kind, id)`` of a key of this station's, else ``None``."""
    prefix = f"{station}."
    if not key.startswith(prefix):
        return None
    kind, _, record_id = key[len(prefix) :].partition(".")
    return (kind, record_id) if kind and record_id else None


def parse(kind: str, value: Any) -> Any:
    """A record's JSON value as its facts type; :class:`RecordError` names the kind and what is wrong."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        raise RecordError(f"unknown record kind {kind!r}; expected one of {', '.join(KINDS)}")
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        raise RecordError(f"{kind} record: {err}") from err


def fact_key(kind: str, record: Any) -> str:
    """The key a record has in :class:`facts.Facts` (a PO line is ``<po>/<line>``, a check its name)."""
    if kind == "po-line":
        return f.po_key(record.po, record.line)
    if kind == "check":
        return str(record.check)
    return str(record.id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _open_ncrs(record: Any) -> int:
    """NCRs open on ``record`` if it is a job (0 for any other record, or none)."""
    return sum(1 for ncr in record.ncrs if ncr.open) if isinstance(record, f.Job) else 0


class StationRecords:
    """The station's records in SQLite, with the facts snapshot the engine reads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._performed: dict[str, dict[str, datetime]] = {}
        self._facts: f.Facts | None = None
        for kind, value in self._db.execute("SELECT kind, value FROM records"):
            if kind in KINDS:
                record = parse(kind, json.loads(value))
                self._by_kind[kind][fact_key(kind, record)] = record
        #: NCRs open on the station's jobs, moved with each job written or deleted (``/metrics``
        #: reads it at every scrape: counting every job's NCRs there grew with the station's history).
        self._ncrs_open = sum(_open_ncrs(job) for job in self._by_kind["job"].values())
        for person, method, at in self._db.execute("SELECT person, method, at FROM performed"):
            self._performed.setdefault(person, {})[method] = datetime.fromisoformat(at)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -----------------------------------------------------------------------------

    def put(self, kind: str, record: Any, *, origin: str = "station") -> None:
        """Store ``record`` (a facts value of ``kind``) durably; the next :meth:`facts` sees it."""
        if kind not in KINDS or not isinstance(record, KINDS[kind]):
            raise RecordError(f"a {kind} record must be a {KINDS.get(kind, object).__name__}")
        key = fact_key(kind, record)
        text = json.dumps(plain(record), ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT INTO records (kind, id, value, origin, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, origin = excluded.origin, "
                "updated_at = excluded.updated_at",
                (kind, key, text, origin, _now()),
            )
            held = self._by_kind[kind].get(key)
            self._by_kind[kind][key] = record
            self._ncrs_open += _open_ncrs(record) - _open_ncrs(held)
            self._facts = None

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, key))
            self._ncrs_open -= _open_ncrs(self._by_kind.get(kind, {}).pop(key, None))
            self._facts = None

    def apply_hub(self, station: str, key: str, revision: int, value: bytes | None) -> tuple[str, str] | None:
        """Materialise one change of the mirrored ``station-records`` bucket; ``(kind, id)`` if applied.

        A change older than what is held (a replay after restart) is skipped; a value that is not a
        valid record of its kind raises :class:`RecordError` and changes nothing.
        """
        parsed = parse_key(station, key)
        if parsed is None:
            return None
        kind, record_id = parsed
        with self._lock:
            row = self._db.execute("SELECT revision FROM hub_revisions WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] >= revision:
            return None
        if value is None:
            self.delete(kind, record_id)
        else:
            try:
                raw = json.loads(value)
            except ValueError as err:
                raise RecordError(f"{key}: not JSON: {err}") from err
            record = parse(kind, raw)
            if fact_key(kind, record) != record_id:
                raise RecordError(
                    f"{key}: the value's own id is {fact_key(kind, record)!r}, not {record_id!r}"
                )
            self.put(kind, record, origin="hub")
        with self._lock:
            self._db.execute(
                "INSERT INTO hub_revisions (key, revision) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET revision = excluded.revision",
                (key, revision),
            )
        return kind, record_id

    def performed(self, person: str, method: str, at: datetime) -> None:
        """``person`` performed ``method`` at ``at`` here (rule 6 reads the latest)."""
        with self._lock:
            held = self._performed.get(person, {}).get(method)
            if held is not None and held >= at:
                return
            self._db.execute(
                "INSERT INTO performed (person, method, at) VALUES (?, ?, ?) "
                "ON CONFLICT (person, method) DO UPDATE SET at = excluded.at",
                (person, method, at.isoformat()),
            )
            self._performed.setdefault(person, {})[method] = at
            self._facts = None

    def save_session(self, state: str, session: Mapping[str, Any]) -> None:
        """Where the station's job stands (its state machine), so a restart resumes it."""
        text = json.dumps(dict(session), ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT INTO job_session (one, state, session) VALUES (1, ?, ?) "
                "ON CONFLICT (one) DO UPDATE SET state = excluded.state, session = excluded.session",
                (state, text),
            )

    def load_session(self) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute("SELECT state, session FROM job_session").fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    # -- reading -----------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Any | None:
        return self._by_kind.get(kind, {}).get(key)

    def job(self, job_id: str) -> f.Job | None:
        found = self._by_kind["job"].get(job_id)
        return found if isinstance(found, f.Job) else None

    @property
    def ncrs_open(self) -> int:
        """NCRs open on the station's jobs now (kept as jobs are written, not counted when asked)."""
        return self._ncrs_open

    def facts(self) -> f.Facts:
        """The facts the engine reads now; the same object until the next write."""
        snapshot = self._facts
        if snapshot is not None:
            return snapshot
        with self._lock:
            people = dict(self._by_kind["person"])
            for person_id, methods in self._performed.items():
                person = people.get(person_id)
                if person is None:
                    continue
                merged = dict(person.last_performed)
                for method, at in methods.items():
                    if merged.get(method) is None or merged[method] < at:
                        merged[method] = at
                people[person_id] = dataclasses.replace(person, last_performed=MappingProxyType(merged))
            snapshot = f.Facts(
                people=MappingProxyType(people),
                equipment=MappingProxyType(dict(self._by_kind["equipment"])),
                checks=MappingProxyType(dict(self._by_kind["check"])),
                lots=MappingProxyType(dict(self._by_kind["lot"])),
                po_lines=MappingProxyType(dict(self._by_kind["po-line"])),
                jobs=MappingProxyType(dict(self._by_kind["job"])),
                procedures=MappingProxyType(dict(self._by_kind["procedure"])),
            )
            self._facts = snapshot
        return snapshot


# -- the hub's side ----------------------------------------------------------------------------


async def ensure_records_bucket(js: JetStreamContext) -> None:
    """The hub's ``station-records`` bucket (latest value per key), created if missing."""
    try:
        await js.key_value(RECORDS_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(KeyValueConfig(bucket=RECORDS_BUCKET, history=1))


async def publish_record(js: JetStreamContext, station: str, kind: str, record_id: str, value: Any) -> int:
    """Put one record for ``station`` in the hub's bucket; returns the KV revision.

    ``value`` is a facts value or its JSON shape; it is checked here, so a bad record is refused at
    the hub and never reaches a station.
    """
    record = value if isinstance(value, KINDS.get(kind, ())) else parse(kind, plain(value))
    if fact_key(kind, record) != record_id:
        raise RecordError(f"{kind} {record_id!r}: the value's own id is {fact_key(kind, record)!r}")
    await ensure_records_bucket(js)
    bucket = await js.key_value(RECORDS_BUCKET)
    payload = json.dumps(plain(record), ensure_ascii=False, sort_keys=True).encode()
    return int(await bucket.put(record_key(station, kind, record_id), payload))


async def withdraw_record(js: JetStreamContext, station: str, kind: str, record_id: str) -> None:
    """Take a record away from ``station`` (a person who left, a lot used up)."""
    bucket = await js.key_value(RECORDS_BUCKET)
    await bucket.delete(record_key(station, kind, record_id))
