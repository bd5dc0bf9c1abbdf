"""MaintenanceHub (Floor hub): the equipment register, calibrations, surveys, orders, and the recall.

Every change is one transaction on the ``maintenance`` schema with its
entry on the ``maintenance-hub`` ledger node inside it, so a refused change
writes neither. What stations judge equipment by reaches them only as an
``equipment`` record in ``station-records`` (``<station>.equipment.<asset>``),
built by :func:`station_record` in the shape the contracts' rules read:
``calibration`` (with its ``due``: the end of the due day), the earlier
``calibrations``, furnaces' ``class``, ``instrumentation``, ``type`` and
qualified ranges, the TUS/SAT on record, thermocouples' ``grade``, the usage
limits, and ``maintained_at`` (the last maintenance order done, which the
check rules' ``afterMaintenance`` reads). An asset whose latest calibration
was out of tolerance is published with that calibration, which the station's
calibration rule refuses until a good one is recorded: the block.

Records go out after the change commits; ``published_version`` says what a
station holds, and :meth:`MaintenanceHub.publish_pending` (after each change,
and every pass of :meth:`MaintenanceHub.run`) sends whatever is behind, so a
NATS outage delays the record and never loses it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import structlog
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow
from starlette.concurrency import run_in_threadpool

from smart import intervals
from smart.contracts import facts as f
from smart.hub import migrations
from smart.hub.clients.store import Refused
from smart.hub.maintenance import recall, schedule, signers
from smart.hub.maintenance.models import (
    CalibrationIn,
    CalibrationView,
    DispositionIn,
    DueItem,
    EquipmentIn,
    EquipmentView,
    OrderIn,
    OrderView,
    RangeIn,
    RecallView,
    ReviewView,
    SignedIn,
    SurveyIn,
    SurveyView,
    UsageLimitIn,
)
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.ledger import hub_store
from smart.node import records

log = structlog.get_logger("smart.hub.maintenance")

SCHEMA = "maintenance"
#: The service's ledger node (one key of the same name).
NODE = "maintenance-hub"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {
    "equipment": "SELECT, INSERT, UPDATE",
    "calibrations": "SELECT, INSERT",
    "surveys": "SELECT, INSERT",
    "orders": "SELECT, INSERT, UPDATE",
    "reviews": "SELECT, INSERT",
    "dispositions": "SELECT, INSERT",
    "equipment_uses": "SELECT, INSERT",
    "usage_seen": "SELECT, INSERT",
}
#: Largest certificate file kept with a calibration.
MAX_CERTIFICATE_BYTES = 10 * 1024 * 1024
#: The due dates the calendar reads: what falls due, and its column.
_DUE_COLUMNS = (("calibration", "calibration_due"), ("TUS", "tus_due"), ("SAT", "sat_due"))


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``maintenance`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


def schema_url(url: str) -> str:
    """``url`` with ``maintenance`` first on the search path (then ``public``, where the hub log is)."""
    return make_conninfo(url, options=f"-c search_path={SCHEMA},public")


@dataclass(frozen=True, slots=True)
class Certificate:
    name: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _equipment_view(row: DictRow, blocked: bool) -> EquipmentView:
    return EquipmentView.model_validate({**row, "blocked": blocked})


def _item_json(item: EquipmentIn) -> dict[str, Any]:
    return item.model_dump(mode="json")


def station_record(
    row: DictRow,
    calibrations: Sequence[DictRow],
    surveys: Sequence[DictRow],
    maintained: Sequence[datetime],
    zone: tzinfo,
) -> f.EquipmentRecord:
    """The ``equipment`` record a station judges this asset by, from its rows (oldest first)."""
    attributes: dict[str, str] = {**row["attributes"], "serial": row["serial"]}
    for column, key in (
        ("furnace_class", "class"),
        ("instrumentation", "instrumentation"),
        ("furnace_type", "type"),
        ("grade", "grade"),
    ):
        if row[column] is not None:
            attributes[key] = str(row[column])
    if row["thermocouple_metal"] is not None:
        attributes["metal"] = row["thermocouple_metal"]
    held = [
        f.Calibration(
            c["calibrated_at"], in_tolerance=c["in_tolerance"], due=intervals.end_of_day(c["next_due"], zone)
        )
        for c in sorted(calibrations, key=lambda c: (c["calibrated_at"], c["id"]))
    ]
    ranges = [RangeIn.model_validate(r) for r in row["qualified_ranges"]]
    limits = [UsageLimitIn.model_validate(u) for u in row["usage_limits"]]
    kind = row["kind"]
    return f.EquipmentRecord(
        id=row["asset_id"],
        kind=kind,
        attributes=attributes,
        calibration=held[-1] if held else None,
        calibrations=tuple(held[:-1]),
        maintained_at=max(maintained) if maintained else None,
        maintenances=tuple(sorted(maintained)[:-1]),
        survey_records=tuple(
            f.Survey(s["survey"], s["surveyed_at"], range=s["range_id"], passed=s["passed"])
            for s in sorted(surveys, key=lambda s: (s["surveyed_at"], s["id"]))
        ),
        qualified_ranges=tuple(
            f.QualifiedRange(r.id, f.Reading(r.min, r.unit), f.Reading(r.max, r.unit)) for r in ranges
        ),
        usage_limits=tuple(f.UsageLimit(u.task, u.unit, u.every, u.due_within) for u in limits),
    )


class MaintenanceHub(ServiceStore):
    """MaintenanceHub on app-role connections, recording on the ``maintenance-hub`` node."""

    log_name = "maintenance_hub"

    def __init__(
        self,
        url: str,
        *,
        ledger: ServiceLedger,
        schedule: schedule.Schedule,
        stations: Collection[str],
        js: JetStreamContext | None,
        verifiers: signers.VerifierSource,
        zone: tzinfo = ZoneInfo("UTC"),
        clock: Callable[[], datetime] = utc_now,
        pool_size: int = 3,
    ) -> None:
        super().__init__(schema_url(url), ledger=ledger, clock=clock, pool_size=pool_size)
        self.schedule = schedule
        self.stations = frozenset(stations)
        self.js = js
        self.verifiers = verifiers
        self.zone = zone
        self.uses = recall.EquipmentUses.connect(schema_url(url))
        self._index_lock = threading.Lock()
        self._bucket: KeyValue | None = None
        self._publishing = asyncio.Lock()

    def close(self) -> None:
        self.uses.close()
        super().close()

    def index_uses(self) -> int:
        """Catch the uses index up with the hub log (one pass at a time: it keeps a cursor)."""
        with self._index_lock:
            return self.uses.index_once()

    # -- the register ------------------------------------------------------------------------

    def register(self, item: EquipmentIn, *, actor: str) -> EquipmentView:
        """Add an asset, or change one (its version counts the change); the station gets it after."""
        if self.stations and item.station not in self.stations:
            raise Refused(
                "station", f"unknown station {item.station!r}; the hub knows {sorted(self.stations)}"
            )
        with self._changing() as conn:
            self._register(conn, item, actor=actor)
        view = self.equipment(item.asset_id)
        assert view is not None
        return view

    def register_many(self, items: Sequence[EquipmentIn], *, actor: str) -> int:
        """Several assets in one transaction (an import): all or none."""
        for number, item in enumerate(items):
            if self.stations and item.station not in self.stations:
                raise Refused(f"[{number}].station", f"unknown station {item.station!r}")
        with self._changing() as conn:
            for item in items:
                self._register(conn, item, actor=actor)
        return len(items)

    def _register(self, conn: psycopg.Connection[DictRow], item: EquipmentIn, *, actor: str) -> None:
        at = self.clock()
        held = conn.execute(
            "SELECT * FROM equipment WHERE asset_id = %s FOR UPDATE", (item.asset_id,)
        ).fetchone()
        values = (
            item.station_kind,
            item.station,
            item.serial,
            item.description,
            item.furnace_class,
            item.instrumentation,
            item.furnace_type,
            item.thermocouple_metal,
            item.grade,
            json.dumps(item.attributes),
            json.dumps([r.model_dump(mode="json") for r in item.qualified_ranges]),
            json.dumps([u.model_dump(mode="json") for u in item.usage_limits]),
        )
        if held is None:
            conn.execute(
                "INSERT INTO equipment (kind, station, serial, description, furnace_class, instrumentation, "
                "furnace_type, thermocouple_metal, grade, attributes, qualified_ranges, "
                "usage_limits, asset_id, "
                "added_by, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (*values, item.asset_id, actor, at),
            )
            self._record("equipment.registered", item.asset_id, actor, after=_item_json(item))
            return
        conn.execute(
            "UPDATE equipment SET kind = %s, station = %s, serial = %s, description = %s, "
            "furnace_class = %s, "
            "instrumentation = %s, furnace_type = %s, thermocouple_metal = %s, grade = %s, "
            "attributes = %s, qualified_ranges = %s, usage_limits = %s, version = version + 1 WHERE "
            "asset_id = %s",
            (*values, item.asset_id),
        )
        before = {
            k: held[k] for k in ("kind", "station", "serial", "furnace_class", "instrumentation", "grade")
        }
        self._record("equipment.changed", item.asset_id, actor, before=before, after=_item_json(item))

    def equipment(self, asset_id: str) -> EquipmentView | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM equipment WHERE asset_id = %s", (asset_id,)).fetchone()
            return None if row is None else _equipment_view(row, self._blocked(conn, asset_id))

    def register_list(self, *, station: str | None = None, limit: int = 1000) -> list[EquipmentView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT e.*, coalesce((SELECT NOT c.in_tolerance FROM calibrations c WHERE c.asset_id = "
                "e.asset_id ORDER BY c.calibrated_at DESC, c.id DESC LIMIT 1), false) AS blocked "
                "FROM equipment e WHERE %(station)s::text IS NULL OR e.station = %(station)s "
                "ORDER BY e.station, e.asset_id LIMIT %(limit)s",
                {"station": station, "limit": limit},
            ).fetchall()
        return [EquipmentView.model_validate(row) for row in rows]

    def _blocked(self, conn: psycopg.Connection[DictRow], asset_id: str) -> bool:
        row = conn.execute(
            "SELECT in_tolerance FROM calibrations WHERE asset_id = %s ORDER BY calibrated_at DESC, id DESC "
            "LIMIT 1",
            (asset_id,),
        ).fetchone()
        return row is not None and not row["in_tolerance"]

    def _asset(self, conn: psycopg.Connection[DictRow], asset_id: str) -> DictRow:
        row = conn.execute("SELECT * FROM equipment WHERE asset_id = %s FOR UPDATE", (asset_id,)).fetchone()
        if row is None:
            raise Refused("asset_id", f"no equipment {asset_id!r} in the register")
        return row

    # -- calibrations ------------------------------------------------------------------------

    def record_calibration(
        self, asset_id: str, calibration: CalibrationIn, *, actor: str
    ) -> tuple[CalibrationView, RecallView | None]:
        """Record a calibration with its certificate; one found out of tolerance opens the recall.

        The due day is the contract's interval from the calibration date, or the certificate's own
        ``next_due`` when that is sooner; with no contract calibrating the kind the certificate must
        give it. Out of tolerance: every job the asset served since its last good calibration (from
        the stations' decisions on the hub log, indexed) gets an impact review, in the same
        transaction, and the published record blocks the asset at its station.
        """
        if not calibration.in_tolerance:
            self.index_uses()  # the impact list is the log as of now, not as of the last pass
        at = self.clock()
        with self._changing() as conn:
            return self._calibrate(conn, asset_id, calibration, at=at, actor=actor)

    def record_calibrations(
        self, calibrations: Sequence[tuple[str, CalibrationIn]], *, actor: str
    ) -> list[tuple[CalibrationView, RecallView | None]]:
        """Several calibrations in one transaction (an import): all or none, oldest first per asset."""
        if any(not c.in_tolerance for _, c in calibrations):
            self.index_uses()
        at = self.clock()
        ordered = sorted(calibrations, key=lambda pair: (pair[0], pair[1].calibrated_at))
        with self._changing() as conn:
            return [self._calibrate(conn, a, c, at=at, actor=actor) for a, c in ordered]

    def calibration_due(self, asset_id: str, calibrated_at: datetime) -> tuple[bool, date | None]:
        """Whether the asset is in the register, and the contract's due day for a calibration then."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT station, kind FROM equipment WHERE asset_id = %s", (asset_id,)
            ).fetchone()
        if row is None:
            return False, None
        return True, self.schedule.calibration_due(row["station"], row["kind"], calibrated_at)

    def _calibrate(
        self,
        conn: psycopg.Connection[DictRow],
        asset_id: str,
        calibration: CalibrationIn,
        *,
        at: datetime,
        actor: str,
    ) -> tuple[CalibrationView, RecallView | None]:
        certificate = _certificate(calibration)
        asset = self._asset(conn, asset_id)
        contract_due = self.schedule.calibration_due(
            asset["station"], asset["kind"], calibration.calibrated_at
        )
        given = calibration.next_due
        if contract_due is None and given is None:
            raise Refused(
                "next_due",
                f"no contract at {asset['station']} calibrates {asset['kind']}; "
                "give next_due from the certificate",
            )
        due = min(d for d in (contract_due, given) if d is not None)
        row = conn.execute(
            "INSERT INTO calibrations (asset_id, calibrated_at, lab, certificate_number, traceability, "
            "as_found, as_left, in_tolerance, next_due, certificate_name, certificate_type, "
            "certificate_sha256, certificate, recorded_by, recorded_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (
                asset_id,
                calibration.calibrated_at,
                calibration.lab,
                calibration.certificate_number,
                calibration.traceability,
                calibration.as_found,
                calibration.as_left,
                calibration.in_tolerance,
                due,
                certificate.name if certificate else None,
                certificate.content_type if certificate else None,
                certificate.sha256 if certificate else None,
                certificate.data if certificate else None,
                actor,
                at,
            ),
        ).fetchone()
        assert row is not None
        latest = conn.execute(
            "SELECT next_due, in_tolerance, calibrated_at FROM calibrations WHERE asset_id = %s "
            "ORDER BY calibrated_at DESC, id DESC LIMIT 1",
            (asset_id,),
        ).fetchone()
        assert latest is not None
        # out of tolerance: due again now (re-calibrate), whatever the certificate's date says
        shown = (
            latest["next_due"]
            if latest["in_tolerance"]
            else latest["calibrated_at"].astimezone(self.zone).date()
        )
        conn.execute(
            "UPDATE equipment SET calibration_due = %s, version = version + 1 WHERE asset_id = %s",
            (shown, asset_id),
        )
        view = CalibrationView.model_validate(row)
        self._record(
            "calibration.recorded",
            asset_id,
            actor,
            after={
                **view.model_dump(mode="json"),
                "contractDue": contract_due.isoformat() if contract_due else None,
                "station": asset["station"],
            },
        )
        found = None if calibration.in_tolerance else self._open_recall(conn, asset, row, at=at, actor=actor)
        return view, found

    def _open_recall(
        self,
        conn: psycopg.Connection[DictRow],
        asset: DictRow,
        calibration: DictRow,
        *,
        at: datetime,
        actor: str,
    ) -> RecallView:
        good = conn.execute(
            "SELECT calibrated_at FROM calibrations WHERE asset_id = %s AND in_tolerance AND "
            "calibrated_at <= %s "
            "AND id <> %s ORDER BY calibrated_at DESC LIMIT 1",
            (asset["asset_id"], calibration["calibrated_at"], calibration["id"]),
        ).fetchone()
        since = good["calibrated_at"] if good is not None else None
        served = recall.impact(
            conn, equipment=asset["asset_id"], since=since, until=calibration["calibrated_at"]
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reviews (calibration_id, asset_id, job, station, first_use, last_use, "
                "opened_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (calibration["id"], asset["asset_id"], j.job, j.station, j.first_use, j.last_use, at)
                    for j in served
                ],
            )
        self._record(
            "maintenance.recall",
            asset["asset_id"],
            actor,
            calibration=calibration["id"],
            foundAt=calibration["calibrated_at"].isoformat(),
            since=since.isoformat() if since else None,
            jobs=[{"job": j.job, "station": j.station, "firstUse": j.first_use.isoformat()} for j in served],
            blocked=True,
        )
        log.warning(
            "maintenance_hub.recall",
            asset=asset["asset_id"],
            station=asset["station"],
            jobs=len(served),
            since=since.isoformat() if since else None,
        )
        return self._recall_view(conn, calibration["id"])

    def _recall_view(self, conn: psycopg.Connection[DictRow], calibration_id: int) -> RecallView:
        cal = conn.execute(
            "SELECT id, asset_id, calibrated_at FROM calibrations WHERE id = %s", (calibration_id,)
        ).fetchone()
        if cal is None:
            raise Refused("calibration", f"no calibration {calibration_id}")
        good = conn.execute(
            "SELECT calibrated_at FROM calibrations WHERE asset_id = %s AND in_tolerance AND "
            "calibrated_at <= %s "
            "ORDER BY calibrated_at DESC LIMIT 1",
            (cal["asset_id"], cal["calibrated_at"]),
        ).fetchone()
        return RecallView(
            calibration_id=cal["id"],
            asset_id=cal["asset_id"],
            found_at=cal["calibrated_at"],
            since=good["calibrated_at"] if good else None,
            reviews=tuple(self._reviews(conn, calibration_id=calibration_id)),
        )

    def calibrations(self, asset_id: str) -> list[CalibrationView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM calibrations WHERE asset_id = %s ORDER BY calibrated_at, id", (asset_id,)
            ).fetchall()
        return [CalibrationView.model_validate(r) for r in rows]

    def certificate(self, calibration_id: int) -> Certificate | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT certificate_name, certificate_type, certificate FROM calibrations WHERE id = %s",
                (calibration_id,),
            ).fetchone()
        if row is None or row["certificate"] is None:
            return None
        return Certificate(row["certificate_name"], row["certificate_type"], bytes(row["certificate"]))

    # -- surveys -----------------------------------------------------------------------------

    def record_survey(self, asset_id: str, survey: SurveyIn, *, actor: str) -> SurveyView:
        """A furnace's TUS or SAT; the next one is due by the contract's class × instrumentation table."""
        at = self.clock()
        with self._changing() as conn:
            asset = self._asset(conn, asset_id)
            if asset["kind"] != "furnace":
                raise Refused("asset_id", f"{asset_id} is a {asset['kind']}, not a furnace")
            ranges = [r["id"] for r in asset["qualified_ranges"]]
            if survey.range_id is not None and survey.range_id not in ranges:
                raise Refused(
                    "range_id", f"{asset_id} has no qualified range {survey.range_id!r}; it has {ranges}"
                )
            due = self.schedule.survey_due(
                asset["station"],
                survey.survey,
                furnace_class=asset["furnace_class"],
                instrumentation=asset["instrumentation"],
                furnace_type=asset["furnace_type"],
                done=survey.surveyed_at,
            )
            if due is None:
                raise Refused(
                    "survey",
                    f"no contract at {asset['station']} gives a {survey.survey} interval for class "
                    f"{asset['furnace_class']} type {asset['instrumentation']}",
                )
            row = conn.execute(
                "INSERT INTO surveys (asset_id, survey, range_id, surveyed_at, passed, next_due, report, "
                "recorded_by, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (
                    asset_id,
                    survey.survey,
                    survey.range_id,
                    survey.surveyed_at,
                    survey.passed,
                    due,
                    survey.report,
                    actor,
                    at,
                ),
            ).fetchone()
            assert row is not None
            column = "tus_due" if survey.survey == "TUS" else "sat_due"
            latest = conn.execute(
                "SELECT min(d) AS due FROM (SELECT DISTINCT ON (coalesce(range_id, '')) next_due AS "
                "d FROM surveys "
                "WHERE asset_id = %s AND survey = %s AND passed ORDER BY coalesce(range_id, ''), "
                "surveyed_at DESC) s",
                (asset_id, survey.survey),
            ).fetchone()
            conn.execute(
                f"UPDATE equipment SET {column} = %s, version = version + 1 WHERE asset_id = %s",
                (latest["due"] if latest else None, asset_id),
            )
            view = SurveyView.model_validate(row)
            self._record("survey.recorded", asset_id, actor, after=view.model_dump(mode="json"))
        return view

    def surveys(self, asset_id: str) -> list[SurveyView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM surveys WHERE asset_id = %s ORDER BY surveyed_at, id", (asset_id,)
            ).fetchall()
        return [SurveyView.model_validate(r) for r in rows]

    # -- maintenance orders ------------------------------------------------------------------

    def open_order(self, asset_id: str, order: OrderIn, *, actor: str) -> OrderView:
        at = self.clock()
        with self._changing() as conn:
            asset = self._asset(conn, asset_id)
            tasks = [u["task"] for u in asset["usage_limits"]]
            if tasks and order.task not in tasks and order.task != "repair":
                raise Refused("task", f"{asset_id} counts {tasks}; a task of those, or repair")
            row = conn.execute(
                "INSERT INTO orders (asset_id, task, reason, opened_by, opened_at) VALUES (%s, %s, "
                "%s, %s, %s) "
                "RETURNING *",
                (asset_id, order.task, order.reason, actor, at),
            ).fetchone()
            assert row is not None
            view = OrderView.model_validate(row)
            self._record("maintenance.order.opened", asset_id, actor, after=view.model_dump(mode="json"))
        return view

    async def complete_order(self, order_id: int, done: SignedIn, *, actor: str) -> OrderView:
        """Close an order as done by the person whose credential verifies; their counter starts again."""
        held = await run_in_threadpool(self._order, order_id)
        if held is None:
            raise Refused("order", f"no maintenance order {order_id}")
        asset = await run_in_threadpool(self.equipment, held.asset_id)
        assert asset is not None
        try:
            signer = await signers.verify(
                self.verifiers, done.credential, right="maintenance", station=asset.station, now=self.clock()
            )
        except signers.NotAuthorised as err:
            raise Refused("credential", str(err)) from err
        view = await run_in_threadpool(self._complete, order_id, signer, done.notes, actor)
        await self.publish_soon()
        return view

    def _complete(self, order_id: int, signer: signers.Signer, notes: str, actor: str) -> OrderView:
        at = self.clock()
        with self._changing() as conn:
            row = conn.execute(
                "UPDATE orders SET done_at = %s, done_by = %s, credential_id = %s, entered_by = %s, "
                "notes = %s "
                "WHERE id = %s AND done_at IS NULL RETURNING *",
                (at, signer.badge, signer.credential_id, actor, notes, order_id),
            ).fetchone()
            if row is None:
                raise Refused("order", f"maintenance order {order_id} is done already")
            conn.execute("UPDATE equipment SET version = version + 1 WHERE asset_id = %s", (row["asset_id"],))
            view = OrderView.model_validate(row)
            self._record(
                "maintenance.order.done",
                row["asset_id"],
                signer.badge,
                after=view.model_dump(mode="json"),
                credential=signer.credential_id,
                enteredBy=actor,
            )
        return view

    def _order(self, order_id: int) -> OrderView | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = %s", (order_id,)).fetchone()
        return None if row is None else OrderView.model_validate(row)

    def orders(self, *, asset_id: str | None = None, open_only: bool = False) -> list[OrderView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM orders WHERE (%(asset)s::text IS NULL OR asset_id = %(asset)s) "
                "AND (NOT %(open)s OR done_at IS NULL) ORDER BY opened_at, id",
                {"asset": asset_id, "open": open_only},
            ).fetchall()
        return [OrderView.model_validate(r) for r in rows]

    # -- recall reviews ----------------------------------------------------------------------

    def _reviews(
        self,
        conn: psycopg.Connection[DictRow],
        *,
        calibration_id: int | None = None,
        asset_id: str | None = None,
        open_only: bool = False,
    ) -> list[ReviewView]:
        rows = conn.execute(
            "SELECT r.*, d.disposition, d.by_badge, d.notes FROM reviews r LEFT JOIN dispositions d "
            "ON d.review_id = r.id WHERE (%(cal)s::bigint IS NULL OR r.calibration_id = %(cal)s) "
            "AND (%(asset)s::text IS NULL OR r.asset_id = %(asset)s) AND (NOT %(open)s OR "
            "d.review_id IS NULL) "
            "ORDER BY r.first_use, r.id",
            {"cal": calibration_id, "asset": asset_id, "open": open_only},
        ).fetchall()
        return [ReviewView.model_validate(r) for r in rows]

    def reviews(self, *, asset_id: str | None = None, open_only: bool = False) -> list[ReviewView]:
        with self.pool.connection() as conn:
            return self._reviews(conn, asset_id=asset_id, open_only=open_only)

    def recall_of(self, calibration_id: int) -> RecallView:
        with self.pool.connection() as conn:
            return self._recall_view(conn, calibration_id)

    async def dispose(self, review_id: int, body: DispositionIn, *, actor: str) -> ReviewView:
        """Disposition one impact review, by an authorised person whose credential verifies."""
        with self.pool.connection() as conn:
            review = conn.execute("SELECT * FROM reviews WHERE id = %s", (review_id,)).fetchone()
        if review is None:
            raise Refused("review", f"no impact review {review_id}")
        try:
            signer = await signers.verify(
                self.verifiers,
                body.credential,
                right="disposition",
                station=review["station"],
                now=self.clock(),
            )
        except signers.NotAuthorised as err:
            raise Refused("credential", str(err)) from err
        return await run_in_threadpool(self._dispose, review, body, signer, actor)

    def _dispose(
        self, review: DictRow, body: DispositionIn, signer: signers.Signer, actor: str
    ) -> ReviewView:
        at = self.clock()
        with self._changing() as conn:
            inserted = conn.execute(
                "INSERT INTO dispositions (review_id, disposition, notes, by_badge, credential_id, "
                "entered_by, at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (review["id"], body.disposition, body.notes, signer.badge, signer.credential_id, actor, at),
            ).rowcount
            if not inserted:
                raise Refused("review", f"impact review {review['id']} is dispositioned already")
            self._record(
                "maintenance.recall.dispositioned",
                review["asset_id"],
                signer.badge,
                review=review["id"],
                job=review["job"],
                station=review["station"],
                disposition=body.disposition,
                notes=body.notes,
                credential=signer.credential_id,
                enteredBy=actor,
            )
            (view,) = [r for r in self._reviews(conn, asset_id=review["asset_id"]) if r.id == review["id"]]
        return view

    # -- the due calendar --------------------------------------------------------------------

    def due(
        self,
        days: int,
        *,
        today: date | None = None,
        station: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> tuple[list[DueItem], int]:
        """What falls due within ``days`` from ``today`` (overdue first), a page of it, and how many in all.

        Each kind of due date has its own index; each branch reads at most a page past ``offset``.
        """
        day = today or self.clock().astimezone(self.zone).date()
        values = {
            "until": date.fromordinal(day.toordinal() + days),
            "limit": limit,
            "offset": offset,
            "upto": limit + offset,
            "station": station,
        }
        branches = [
            sql.SQL(
                "(SELECT asset_id, kind, station, {what} AS what, {column} AS due FROM equipment "
                "WHERE {column} <= %(until)s AND (%(station)s::text IS NULL OR station = %(station)s) "
                "ORDER BY {column} LIMIT %(upto)s)"
            ).format(what=sql.Literal(what), column=sql.Identifier(column))
            for what, column in _DUE_COLUMNS
        ]
        counts = [
            sql.SQL(
                "(SELECT count(*) FROM equipment WHERE {column} <= %(until)s "
                "AND (%(station)s::text IS NULL OR station = %(station)s))"
            ).format(column=sql.Identifier(column))
            for _, column in _DUE_COLUMNS
        ]
        page = sql.SQL("SELECT * FROM ({}) d ORDER BY due, asset_id, what LIMIT %(limit)s OFFSET %(offset)s")
        with self.pool.connection() as conn:
            rows = conn.execute(page.format(sql.SQL(" UNION ALL ").join(branches)), values).fetchall()
            total = conn.execute(sql.SQL("SELECT {}").format(sql.SQL(" + ").join(counts)), values).fetchone()
        found = [DueItem.model_validate({**r, "overdue": r["due"] < day}) for r in rows]
        return found, int(next(iter(total.values()))) if total else 0

    # -- to the stations ---------------------------------------------------------------------

    def station_record(self, asset_id: str) -> tuple[DictRow, f.EquipmentRecord]:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM equipment WHERE asset_id = %s", (asset_id,)).fetchone()
            if row is None:
                raise Refused("asset_id", f"no equipment {asset_id!r} in the register")
            cals = conn.execute("SELECT * FROM calibrations WHERE asset_id = %s", (asset_id,)).fetchall()
            surveys = conn.execute("SELECT * FROM surveys WHERE asset_id = %s", (asset_id,)).fetchall()
            done = conn.execute(
                "SELECT done_at FROM orders WHERE asset_id = %s AND done_at IS NOT NULL", (asset_id,)
            ).fetchall()
        return row, station_record(row, cals, surveys, [d["done_at"] for d in done], self.zone)

    async def _records_bucket(self) -> KeyValue:
        assert self.js is not None, "this MaintenanceHub has no NATS connection to publish with"
        if self._bucket is None:
            await records.ensure_records_bucket(self.js)
            self._bucket = await self.js.key_value(records.RECORDS_BUCKET)
        return self._bucket

    def _pending(self) -> tuple[list[str], list[DictRow]]:
        with self.pool.connection() as conn:
            assets = [
                r["asset_id"]
                for r in conn.execute(
                    "SELECT asset_id FROM equipment WHERE published_version < version ORDER BY asset_id"
                ).fetchall()
            ]
            resets = conn.execute(
                "SELECT o.id, o.asset_id, o.task, o.done_at, o.done_by, e.station FROM orders o JOIN "
                "equipment e "
                "USING (asset_id) WHERE o.done_at IS NOT NULL AND NOT o.reset_published ORDER BY o.id"
            ).fetchall()
        return assets, resets

    def _published(self, asset_id: str, version: int, station: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE equipment SET published_version = greatest(published_version, %s), "
                "published_station = %s "
                "WHERE asset_id = %s",
                (version, station, asset_id),
            )

    def _total(self, asset_id: str, task: str) -> float:
        self.index_uses()
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT total FROM usage_seen WHERE equipment = %s AND task = %s ORDER BY ledger_idx "
                "DESC LIMIT 1",
                (asset_id, task),
            ).fetchone()
        return float(row["total"]) if row else 0.0

    def _reset_published(self, order_id: int) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE orders SET reset_published = true WHERE id = %s", (order_id,))

    async def publish_pending(self) -> int:
        """Send every record a station does not hold yet (assets behind, counters to reset); how many."""
        if self.js is None:
            return 0
        async with self._publishing:
            assets, resets = await run_in_threadpool(self._pending)
            bucket = await self._records_bucket()
            sent = 0
            for asset_id in assets:
                row, value = await run_in_threadpool(self.station_record, asset_id)
                key = records.record_key(row["station"], "equipment", asset_id)
                payload = json.dumps(records.plain(value), ensure_ascii=False, sort_keys=True).encode()
                records.parse("equipment", json.loads(payload))  # refused here, never at a station
                await bucket.put(key, payload)
                moved = row["published_station"]
                if moved is not None and moved != row["station"]:
                    with contextlib.suppress(Exception):
                        await bucket.delete(records.record_key(moved, "equipment", asset_id))
                await run_in_threadpool(self._published, asset_id, row["version"], row["station"])
                log.info(
                    "maintenance_hub.published",
                    asset=asset_id,
                    station=row["station"],
                    version=row["version"],
                )
                sent += 1
            for reset in resets:
                task_key = f.usage_key(reset["asset_id"], reset["task"])
                held_total = await run_in_threadpool(self._total, reset["asset_id"], reset["task"])
                count = f.UsageCount(
                    id=task_key,
                    equipment=reset["asset_id"],
                    task=reset["task"],
                    since_service=0.0,
                    total=held_total,
                    last_service_at=reset["done_at"],
                    last_service_by=reset["done_by"],
                )
                await bucket.put(
                    records.record_key(reset["station"], "usage", task_key),
                    json.dumps(records.plain(count), ensure_ascii=False, sort_keys=True).encode(),
                )
                await run_in_threadpool(self._reset_published, reset["id"])
                log.info(
                    "maintenance_hub.counter_reset",
                    asset=reset["asset_id"],
                    task=reset["task"],
                    station=reset["station"],
                )
                sent += 1
            return sent

    async def publish_soon(self) -> int:
        """:meth:`publish_pending` now if the bus answers; if not, the next pass of :meth:`run` sends it.

        The change is committed and on the ledger either way; the register shows it as still sending.
        """
        try:
            return await self.publish_pending()
        except Exception as err:  # NATS down or slow: nothing is lost, the record is only late
            log.warning("maintenance_hub.publish_deferred", error=f"{type(err).__name__}: {err}")
            return 0

    async def run(self, every_s: float = 2.0) -> None:
        """Index the stations' uses from the hub log and send what is behind, until cancelled."""
        while True:
            try:
                await asyncio.to_thread(self.index_uses)
                await self.publish_pending()
            except Exception as err:  # a database or bus hiccup: logged, and the next pass retries
                log.warning("maintenance_hub.pass_failed", error=f"{type(err).__name__}: {err}")
            await asyncio.sleep(every_s)


def _certificate(calibration: CalibrationIn) -> Certificate | None:
    given = calibration.certificate
    if given is None:
        return None
    try:
        data = base64.b64decode(given.data_base64, validate=True)
    except (binascii.Error, ValueError) as err:
        raise Refused("certificate.data_base64", f"not base64: {err}") from err
    if not data or len(data) > MAX_CERTIFICATE_BYTES:
        raise Refused("certificate.data_base64", f"a certificate file of 1 to {MAX_CERTIFICATE_BYTES} bytes")
    return Certificate(given.name, given.content_type, data)
