"""Inventory: consumables from known lots, in date, within their opened shelf life, and reordered in time.

- ``use``: the event's lots judged by the contract's lot rules. With body
  ``consumed`` (lot → quantity) it also refuses a draw larger than a lot
  holds, so the gate never lets a job start on stock that is not there.
- ``lot``: body ``lot`` opened now (the first opening is kept), written to
  the station's records, then judged like ``use``.
- ``consume``: body ``consumed`` (lot → quantity) taken from the lots now.
  The job machine asks it once the gate has allowed, so a refused start
  draws nothing. Each lot's ``on_hand`` goes down and the use is kept for
  the material's rate.
- ``stock``: a stocktake, body ``lot`` and ``onHand``, the lot's quantity now.
- ``receive``: body ``lot``, ``material``, ``quantity``, ``expires`` (and
  ``unit``, ``form``): a new lot on the shelf.

**Reorder signals.** After every one of these verbs each material they
touched is projected one lead time ahead (:mod:`.reorder`) from what the
station holds: its lots with a quantity on hand (``Lot.on_hand``, from the
hub's ``station-records`` or kept here), the material's reorder terms (a
``material`` record the hub owns: minimum, lead time, planned use, pack,
what is on order) and the use recorded here (a ``stock`` record per
material). Below the minimum, the station records an ``inventory.reorder``
entry naming station, material, quantities and the lots expiring: the
node agent ships every ledger entry to the hub exactly once, across hub
outages, so that entry *is* the signal the hub's procurement reads. One
signal stays open per material (its entry is kept in the ``stock`` record)
until the projection is back at or above the minimum (a lot received, an
order on its way), when ``inventory.reorder.cleared`` is recorded; so a
shelf running low raises one signal, not one per job. A material without
terms, or without any lot whose stock is tracked, is never signalled. A lot's
quantity is the station's once it draws from it; a newer value the hub
publishes for the lot (a stocktake there) replaces it, as for any record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from smart.contracts import facts as f
from smart.modules import framework, rulebound
from smart.modules.inventory import reorder

log = structlog.get_logger("smart.modules.inventory")

#: How far back recorded use counts toward a material's rate (and is kept).
WINDOW = timedelta(days=30)


class InventoryModule(rulebound.RuleBoundModule):
    name = "inventory"

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb in ("consume", "stock", "receive"):
            return await self._write(event)
        decision = await super().handle(event)
        if decision.module != self.name or any(r.rule.startswith(f"{self.name}.") for r in decision.reasons):
            return decision  # a request refused by this module itself: nothing was used
        lots = (await self.station.facts()).lots
        signals = await self._signals((lots[i].material for i in event.event.lots if i in lots), event.event)
        if not signals:
            return decision
        return dataclasses.replace(decision, effects={**decision.effects, "reorder": signals})

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        if event.verb == "use" and "consumed" in event.body:
            drawn = await self._drawn(event.body.get("consumed"))
            if isinstance(drawn, framework.ModuleDecision):
                return drawn
            return {"consumed": {lot.id: quantity for lot, quantity in drawn}}
        if event.verb != "lot":
            return {}
        lot_id = str(event.body.get("lot") or "")
        held = await self.station.held("lot", lot_id)
        if not isinstance(held, f.Lot):
            return rulebound.refusal(
                self.name, "lot.unknown", f"lot {lot_id!r} is not known here", lot=lot_id
            )
        if held.opened is None:
            actor = event.event.person or self.station.station
            await self.station.keep("lot", dataclasses.replace(held, opened=event.event.at), actor=actor)
        return {"lot": lot_id, "opened": (held.opened or event.event.at).isoformat()}

    # -- stock movements ---------------------------------------------------------------------

    async def _drawn(self, raw: Any) -> list[tuple[f.Lot, float]] | framework.ModuleDecision:
        """``consumed`` read and checked against the lots: every quantity positive and on the shelf."""
        if not isinstance(raw, dict) or not raw:
            return rulebound.refusal(
                self.name, "consumed", "body.consumed: expected an object of lot → quantity"
            )
        lots = (await self.station.facts()).lots
        drawn: list[tuple[f.Lot, float]] = []
        for lot_id, quantity in raw.items():
            lot = lots.get(lot_id)
            if lot is None:
                return rulebound.refusal(
                    self.name, "lot.unknown", f"lot {lot_id!r} is not known here", lot=lot_id
                )
            if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
                return rulebound.refusal(
                    self.name,
                    "consumed",
                    f"body.consumed.{lot_id}: expected a quantity > 0, got {quantity!r}",
                    lot=lot_id,
                )
            if lot.on_hand is not None and quantity > lot.on_hand:
                unit = lot.unit or ""
                return rulebound.refusal(
                    self.name,
                    "lot.short",
                    f"lot {lot_id} ({lot.material}) holds {lot.on_hand:g} {unit}; cannot use {quantity:g}",
                    lot=lot_id,
                    onHand=lot.on_hand,
                    wanted=quantity,
                )
            drawn.append((lot, float(quantity)))
        return drawn

    async def _write(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        happened, body = event.event, event.body
        actor = happened.person or self.station.station
        effects: dict[str, Any] = {}
        if event.verb == "consume":
            drawn = await self._drawn(body.get("consumed"))
            if isinstance(drawn, framework.ModuleDecision):
                return drawn
            for lot, quantity in drawn:
                if lot.on_hand is not None:
                    await self.station.keep(
                        "lot", dataclasses.replace(lot, on_hand=lot.on_hand - quantity), actor=actor
                    )
                stock = _stock(await self.station.held("stock", lot.material), lot.material)
                since = happened.at - WINDOW
                used = (
                    *(u for u in stock.used if u.at > since),
                    f.Consumption(happened.at, lot.id, quantity),
                )
                await self.station.keep("stock", dataclasses.replace(stock, used=used), actor=actor)
            effects["consumed"] = {lot.id: quantity for lot, quantity in drawn}
            materials = [lot.material for lot, _ in drawn]
        elif event.verb == "stock":
            lot_id, on_hand = body.get("lot"), body.get("onHand")
            held = await self.station.held("lot", str(lot_id))
            if not isinstance(held, f.Lot):
                return rulebound.refusal(
                    self.name, "lot.unknown", f"lot {lot_id!r} is not known here", lot=lot_id
                )
            if isinstance(on_hand, bool) or not isinstance(on_hand, int | float) or on_hand < 0:
                return rulebound.refusal(
                    self.name, "stock", f"body.onHand: expected a quantity >= 0, got {on_hand!r}", lot=held.id
                )
            await self.station.keep("lot", dataclasses.replace(held, on_hand=float(on_hand)), actor=actor)
            effects.update(lot=held.id, onHand=float(on_hand))
            materials = [held.material]
        else:
            received = self._received(body)
            if isinstance(received, str):
                return rulebound.refusal(self.name, "receive", received, lot=body.get("lot"))
            if await self.station.held("lot", received.id) is not None:
                return rulebound.refusal(
                    self.name, "receive", f"lot {received.id} is already at this station", lot=received.id
                )
            await self.station.keep("lot", received, actor=actor)
            effects.update(lot=received.id, material=received.material, onHand=received.on_hand)
            materials = [received.material]
        signals = await self._signals(materials, happened)
        if signals:
            effects["reorder"] = signals
        return framework.ModuleDecision(module=self.name, outcome="allow", effects=effects)

    def _received(self, body: Mapping[str, Any]) -> f.Lot | str:
        """The lot a receipt describes, or what is wrong with it."""
        lot_id, material, quantity = body.get("lot"), body.get("material"), body.get("quantity")
        if not isinstance(lot_id, str) or not lot_id:
            return "body.lot: expected the new lot's id"
        if not isinstance(material, str) or not material:
            return "body.material: expected the material's name"
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
            return f"body.quantity: expected a quantity > 0, got {quantity!r}"
        try:
            expires = datetime.fromisoformat(str(body.get("expires")))
        except ValueError:
            return f"body.expires: expected an ISO date and time, got {body.get('expires')!r}"
        if expires.tzinfo is None:
            return "body.expires: needs a timezone"
        unit = body.get("unit")
        form = body.get("form", "bulk")
        if (unit is not None and not isinstance(unit, str)) or not isinstance(form, str):
            return "body.unit and body.form: expected strings"
        return f.Lot(lot_id, material, expires, form=form, on_hand=float(quantity), unit=unit)

    # -- reorder signals ---------------------------------------------------------------------

    async def _signals(self, materials: Iterable[str], happened: f.Event) -> list[dict[str, Any]]:
        """Raise or clear each material's reorder signal as its projection says; what changed or is open."""
        found: list[dict[str, Any]] = []
        for material in dict.fromkeys(materials):
            state = await self._signal(material, happened)
            if state is not None:
                found.append(state)
        return found

    async def _signal(self, material: str, happened: f.Event) -> dict[str, Any] | None:
        terms = await self.station.held("material", material)
        tracked = [
            lot
            for lot in (await self.station.facts()).lots.values()
            if lot.material == material and lot.on_hand is not None
        ]
        if not isinstance(terms, f.Material) or not tracked:
            return None
        kept = _stock(await self.station.held("stock", material), material)
        stock = reorder.Stock(
            material=material,
            unit=terms.unit,
            min_stock=terms.min_stock,
            lead_time=timedelta(days=terms.lead_time_days),
            lots=tuple(reorder.LotStock(lot.id, lot.on_hand or 0.0, lot.expires) for lot in tracked),
            on_order=terms.on_order,
            planned_daily_use=terms.planned_daily_use,
            pack_size=terms.pack_size,
            usage=tuple(reorder.Usage(u.at, u.lot, u.quantity) for u in kept.used),
            window=WINDOW,
        )
        signal = reorder.reorder(stock, happened.at)
        actor = happened.person or self.station.station
        if signal is None:
            if kept.reorder_entry is None:
                return None
            cleared = await self.station.record(
                kind="inventory.reorder.cleared",
                subject=material,
                data={
                    "station": self.station.station,
                    "material": material,
                    "signal": kept.reorder_entry,
                    "projected": reorder.projected(stock, happened.at),
                    "minStock": terms.min_stock,
                    "at": happened.at.isoformat(),
                },
                actor=actor,
            )
            await self.station.keep(
                "stock",
                dataclasses.replace(kept, reorder_entry=None, reorder_at=None, reorder_quantity=None),
                actor=actor,
            )
            log.info(
                "inventory.reorder_cleared",
                station=self.station.station,
                material=material,
                entry=cleared.node_seq,
                revision=cleared.contract,
            )
            return {"material": material, "state": "cleared", "entry": cleared.node_seq}
        if kept.reorder_entry is not None:
            return {"material": material, "state": "open", "entry": kept.reorder_entry}
        entry = await self.station.record(
            kind="inventory.reorder",
            subject=material,
            data={
                "station": self.station.station,
                "material": material,
                "quantity": signal.quantity,
                "unit": signal.unit,
                "projected": signal.projected,
                "minStock": signal.min_stock,
                "onHand": stock.usable(happened.at),
                "onOrder": terms.on_order,
                "leadTimeDays": terms.lead_time_days,
                "expiring": list(signal.expiring),
                "message": signal.message,
                "at": happened.at.isoformat(),
            },
            actor=actor,
        )
        await self.station.keep(
            "stock",
            dataclasses.replace(
                kept, reorder_entry=entry.node_seq, reorder_at=happened.at, reorder_quantity=signal.quantity
            ),
            actor=actor,
        )
        log.warning(
            "inventory.reorder",
            station=self.station.station,
            material=material,
            quantity=signal.quantity,
            entry=entry.node_seq,
            revision=entry.contract,
        )
        return {
            "material": material,
            "state": "raised",
            "entry": entry.node_seq,
            "quantity": signal.quantity,
            "unit": signal.unit,
            "message": signal.message,
        }


def _stock(held: Any, material: str) -> f.StockRecord:
    return held if isinstance(held, f.StockRecord) else f.StockRecord(id=material)
