"""InventoryHub's store: materials and lots, where they went, purchase requests, expired lots withdrawn.

A lot is entered as received (the supplier's certificate number, the day it
came, the day it expires, the quantity and its unit) and given to the
stations that use its material as the ``lot`` record the lot rule reads,
with its form (an aerosol has no in-use checks, DOMAIN rule 17); a
material goes to its stations as the ``material`` record that sets their
reorder terms. :meth:`InventoryHub.expired` lists, on the day a lot
expires, every lot still out on the floor; :class:`InventoryPublisher`
withdraws each from every station's records (the station then refuses it as
unknown, as well as expired) and records the withdrawal before any station
loses it. The stations' reorder signals (their ``inventory.reorder``
entries, indexed by :mod:`smart.hub.reorders`) become purchase requests
to the material's supplier, in whole packs, each then published one way to
the Business hub's buyers (``published.purchase-request.PR-<id>``): the
purchasing side of InventoryHub is Business's, the lots stations judge by
are not (README).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path

import psycopg
import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow
from starlette.concurrency import run_in_threadpool

from smart.contracts import facts as f
from smart.hub import migrations, reorders
from smart.hub.clients.store import Refused
from smart.hub.inventory.models import LotIn, LotView, MaterialIn, MaterialView, PurchaseRequest
from smart.hub.published import feed
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.ledger import hub_store
from smart.node import records

log = structlog.get_logger("smart.hub.inventory")

NODE = "inventory-hub"
#: The published kind a purchase request goes to the Business hub as (``hub_roles.PUBLISHED_KINDS``).
PURCHASE_REQUEST_KIND = "purchase-request"
SCHEMA = "inventory"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {
    "materials": "SELECT, INSERT",
    "lots": "SELECT, INSERT, UPDATE",
    "purchase_requests": "SELECT, INSERT, UPDATE",
}


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


class InventoryHub(ServiceStore):
    log_name = "inventory_hub"

    def __init__(
        self,
        url: str,
        *,
        ledger: ServiceLedger,
        stations: Collection[str],
        clock: Callable[[], datetime] = utc_now,
        zone: tzinfo = UTC,
        pool_size: int = 2,
    ) -> None:
        super().__init__(
            make_conninfo(url, options=f"-c search_path={SCHEMA},public"),
            ledger=ledger,
            clock=clock,
            pool_size=pool_size,
        )
        self.url = url
        self.stations = frozenset(stations)
        self.zone = zone

    def today(self) -> date:
        return self.clock().astimezone(self.zone).date()

    def _known(self, field: str, stations: tuple[str, ...]) -> None:
        unknown = sorted(set(stations) - self.stations)
        if unknown:
            raise Refused(
                field,
                f"unknown station {', '.join(unknown)}; the hub knows {', '.join(sorted(self.stations))}",
            )

    # -- materials ----------------------------------------------------------------------------

    def add_material(self, material: MaterialIn, *, actor: str) -> MaterialView:
        self._known("stations", material.stations)
        at = self.clock()
        with self._changing() as conn:
            if conn.execute("SELECT 1 FROM materials WHERE id = %s", (material.id,)).fetchone():
                raise Refused("id", f"material {material.id} exists already")
            conn.execute(
                "INSERT INTO materials (id, form, unit, shelf_life, in_use_checks, supplier, min_stock, "
                "lead_time_days, pack_size, stations, added_by, added_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    material.id,
                    material.form,
                    material.unit,
                    material.shelf_life,
                    list(material.in_use_checks),
                    material.supplier,
                    material.min_stock,
                    material.lead_time_days,
                    material.pack_size,
                    list(material.stations),
                    actor,
                    at,
                ),
            )
            view = MaterialView(**material.model_dump(), added_by=actor, added_at=at)
            self._record("material.added", material.id, actor, after=view.model_dump(mode="json"))
        return view

    def material(self, material_id: str) -> MaterialView | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM materials WHERE id = %s", (material_id,)).fetchone()
        return None if row is None else MaterialView.model_validate(row)

    def materials(self) -> list[MaterialView]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM materials ORDER BY id").fetchall()
        return [MaterialView.model_validate(r) for r in rows]

    # -- lots ---------------------------------------------------------------------------------

    def receive(self, lot: LotIn, *, actor: str) -> LotView:
        """Enter a lot as received; refused naming the field (unknown material, station, a past expiry)."""
        self._known("stations", lot.stations)
        at = self.clock()
        with self._changing() as conn:
            material = conn.execute("SELECT unit FROM materials WHERE id = %s", (lot.material,)).fetchone()
            if material is None:
                raise Refused("material", f"no material {lot.material}; add it first")
            if lot.unit != material["unit"]:
                raise Refused(
                    "unit", f"material {lot.material} is counted in {material['unit']}, not {lot.unit}"
                )
            if conn.execute("SELECT 1 FROM lots WHERE id = %s", (lot.id,)).fetchone():
                raise Refused("id", f"lot {lot.id} is received already")
            if lot.expires_on <= self.today():
                raise Refused(
                    "expires_on",
                    f"lot {lot.id} expired {lot.expires_on}; an expired lot is not put on the shelf",
                )
            self._insert(conn, lot, actor, at)
            view = self._lot(conn, lot.id)
            assert view is not None
            self._record("lot.received", lot.id, actor, after=view.model_dump(mode="json"))
        return view

    def receive_many(self, lots: list[LotIn], *, actor: str) -> list[LotView]:
        """Several lots in one transaction (an import): all or none."""
        at = self.clock()
        with self._changing() as conn:
            for lot in lots:
                self._insert(conn, lot, actor, at)
            views = [v for lot in lots if (v := self._lot(conn, lot.id)) is not None]
            self.ledger.append_many(
                [
                    {"kind": "lot.received", "subject": v.id, "data": {"after": v.model_dump(mode="json")}}
                    for v in views
                ],
                actor=actor,
            )
        return views

    @staticmethod
    def _insert(conn: psycopg.Connection[DictRow], lot: LotIn, actor: str, at: datetime) -> None:
        conn.execute(
            "INSERT INTO lots (id, material, supplier, certificate, received_on, expires_on, quantity, unit, "
            "stations, added_by, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                lot.id,
                lot.material,
                lot.supplier,
                lot.certificate,
                lot.received_on,
                lot.expires_on,
                lot.quantity,
                lot.unit,
                list(lot.stations),
                actor,
                at,
            ),
        )

    def lots(self) -> list[LotView]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM lots ORDER BY expires_on, id").fetchall()
        return [LotView.model_validate(r) for r in rows]

    def lot(self, lot_id: str) -> LotView | None:
        with self.pool.connection() as conn:
            return self._lot(conn, lot_id)

    @staticmethod
    def _lot(conn: psycopg.Connection[DictRow], lot_id: str) -> LotView | None:
        row = conn.execute("SELECT * FROM lots WHERE id = %s", (lot_id,)).fetchone()
        return None if row is None else LotView.model_validate(row)

    def expired(self, on: date | None = None) -> list[LotView]:
        """Lots whose expiry day has come and that are still out on the floor."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM lots WHERE expires_on <= %s AND withdrawn_on IS NULL ORDER BY id",
                (on or self.today(),),
            ).fetchall()
        return [LotView.model_validate(r) for r in rows]

    def withdraw(self, lot: LotView, *, why: str, actor: str) -> None:
        """Mark the lot withdrawn and record it (before any station loses it)."""
        today = self.today()
        with self._changing() as conn:
            conn.execute(
                "UPDATE lots SET withdrawn_on = %s, withdrawn_why = %s "
                "WHERE id = %s AND withdrawn_on IS NULL",
                (today, why, lot.id),
            )
            self._record(
                "lot.withdrawn",
                lot.id,
                actor,
                lot=lot.id,
                material=lot.material,
                stations=list(lot.stations),
                why=why,
                on=today.isoformat(),
            )

    def station_lot(self, lot: LotView) -> f.Lot:
        material = self.material(lot.material)
        assert material is not None
        expires = datetime.combine(lot.expires_on, time(0), tzinfo=self.zone).astimezone(UTC)
        return f.Lot(
            id=lot.id,
            material=lot.material,
            expires=expires,
            form=material.form,
            on_hand=lot.quantity,
            unit=lot.unit,
        )

    @staticmethod
    def station_material(material: MaterialView) -> f.Material:
        return f.Material(
            id=material.id,
            unit=material.unit,
            min_stock=material.min_stock,
            lead_time_days=material.lead_time_days,
            pack_size=material.pack_size,
        )

    # -- purchase requests --------------------------------------------------------------------

    def raise_requests(self) -> list[PurchaseRequest]:
        """One purchase request per open reorder signal not yet requested, to the material's supplier."""
        with psycopg.connect(self.url, autocommit=True) as plain:  # the board reads tuple rows
            signals = reorders.open_reorders(plain)
        made = []
        for signal in signals:
            material = self.material(signal.material)
            if material is None:
                log.warning(
                    "inventory_hub.reorder_unknown_material", station=signal.station, material=signal.material
                )
                continue
            wanted = (
                signal.quantity if signal.quantity and signal.quantity > 0 else max(material.min_stock, 1.0)
            )
            if material.pack_size > 0:
                wanted = math.ceil(wanted / material.pack_size) * material.pack_size
            with self._changing() as conn:
                row = conn.execute(
                    "INSERT INTO purchase_requests (station, material, supplier, quantity, unit, signal_idx, "
                    "raised_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (signal_idx) DO NOTHING RETURNING *",
                    (
                        signal.station,
                        material.id,
                        material.supplier,
                        wanted,
                        material.unit,
                        signal.ledger_idx,
                        self.clock(),
                    ),
                ).fetchone()
                if row is None:
                    continue
                request = PurchaseRequest.model_validate(row)
                self._record(
                    "purchase.requested",
                    f"{signal.station}/{material.id}",
                    NODE,
                    request=request.model_dump(mode="json"),
                    signal={
                        "index": signal.ledger_idx,
                        "nodeSeq": signal.node_seq,
                        "entryHash": signal.entry_hash,
                    },
                )
            made.append(request)
        return made

    def purchase_requests(self, *, unpublished: bool = False) -> list[PurchaseRequest]:
        where = " WHERE published_seq IS NULL" if unpublished else ""
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT * FROM purchase_requests{where} ORDER BY id").fetchall()
        return [PurchaseRequest.model_validate(r) for r in rows]

    def published(self, request_id: int, seq: int) -> None:
        """Note that the request is on the Business hub's feed, at stream sequence ``seq``."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE purchase_requests SET published_seq = %s WHERE id = %s AND published_seq IS NULL",
                (seq, request_id),
            )


class InventoryPublisher:
    """Gives stations their lots and materials, withdraws expired lots on the day, raises requests."""

    def __init__(self, inventory: InventoryHub, js: JetStreamContext) -> None:
        self.inventory = inventory
        self.js = js

    async def add_material(self, material: MaterialIn, *, actor: str) -> MaterialView:
        view = await run_in_threadpool(self.inventory.add_material, material, actor=actor)
        record = self.inventory.station_material(view)
        for station in view.stations:
            await records.publish_record(self.js, station, "material", view.id, record)
        return view

    async def receive(self, lot: LotIn, *, actor: str) -> LotView:
        view = await run_in_threadpool(self.inventory.receive, lot, actor=actor)
        await self._give(view)
        return view

    async def receive_many(self, lots: list[LotIn], *, actor: str) -> list[LotView]:
        views = await run_in_threadpool(self.inventory.receive_many, lots, actor=actor)
        for view in views:
            await self._give(view)
        return views

    async def _give(self, view: LotView) -> None:
        record = await run_in_threadpool(self.inventory.station_lot, view)
        for station in view.stations:
            await records.publish_record(self.js, station, "lot", view.id, record)

    async def sweep(self) -> list[str]:
        """Withdraw every lot whose expiry day has come from every station it went to; their ids."""
        withdrawn = []
        for lot in await run_in_threadpool(self.inventory.expired):
            await run_in_threadpool(self.inventory.withdraw, lot, why=f"expired {lot.expires_on}", actor=NODE)
            for station in lot.stations:
                await records.withdraw_record(self.js, station, "lot", lot.id)
            log.info("inventory_hub.lot_withdrawn", lot=lot.id, stations=list(lot.stations))
            withdrawn.append(lot.id)
        await self._give_missing()
        await run_in_threadpool(self.inventory.raise_requests)
        try:
            await self.publish_requests()
        except Exception as err:  # the feed away: they stay unpublished and the next sweep sends them
            log.warning("inventory_hub.purchase_requests_unpublished", error=f"{type(err).__name__}: {err}")
        return withdrawn

    async def publish_requests(self) -> int:
        """Each purchase request not yet there goes to the Business hub, one way (``published.>``).

        The buyers work on Business; nothing comes back from it. Published first, noted after: a crash
        between the two sends it again, and Business keeps one record per request (kind and key).
        """
        sent = 0
        for request in await run_in_threadpool(self.inventory.purchase_requests, unpublished=True):
            material = await run_in_threadpool(self.inventory.material, request.material)
            body = request.for_business(material.pack_size if material is not None else 0)
            seq = await feed.publish(self.js, kind=PURCHASE_REQUEST_KIND, key=f"PR-{request.id}", body=body)
            await run_in_threadpool(self.inventory.published, request.id, seq)
            log.info("inventory_hub.purchase_request_published", request=request.id, seq=seq)
            sent += 1
        return sent

    async def _give_missing(self) -> None:
        """A lot on the floor that a station's records lack (its put failed) is given again.

        Only a missing key: a lot a station holds keeps its stock as the station counted it.
        """
        await records.ensure_records_bucket(self.js)
        bucket = await self.js.key_value(records.RECORDS_BUCKET)
        today = await run_in_threadpool(self.inventory.today)
        for lot in await run_in_threadpool(self.inventory.lots):
            if lot.withdrawn_on is not None or lot.expires_on <= today:
                continue
            for station in lot.stations:
                try:
                    held = await bucket.get(records.record_key(station, "lot", lot.id))
                except KeyNotFoundError:
                    held = None
                if held is None or held.value is None:
                    record = await run_in_threadpool(self.inventory.station_lot, lot)
                    await records.publish_record(self.js, station, "lot", lot.id, record)
                    log.info("inventory_hub.lot_given_again", lot=lot.id, station=station)

    async def run(self, every_s: float = 60.0) -> None:
        import asyncio

        while True:
            try:
                await self.sweep()
            except Exception as err:  # a NATS or database hiccup: the next sweep retries
                log.warning("inventory_hub.sweep_failed", error=f"{type(err).__name__}: {err}")
            await asyncio.sleep(every_s)
