"""Consumable stock at a station and when to reorder it: before the shelf runs below its minimum.

Penetrant, developer, magnetic particles, tank chemicals: each is held in
lots with a quantity on hand and an expiry. Running out stops a line as
surely as a failed check, and an order placed on the day the shelf empties
arrives a lead time too late. So the signal looks ahead one lead time:

    projected = stock still in date when an order would arrive
                + what is already on order
                − expected use over the lead time

and asks for a reorder when ``projected`` falls below the minimum stock. The
quantity suggested brings the projection back up to the minimum plus one lead
time of use, rounded up to the pack size.

Expected use is the average daily use over the recent window of recorded
usage, or a stated rate while there is no history. Whether a lot may be used
at all (expired, opened too long, untested) is the contract's ``lot`` rule
in the engine, not this file's business: here an expired lot merely stops
counting as stock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class StockError(ValueError):
    """A stock movement that cannot happen: more than a lot holds, an unknown lot, a quantity ≤ 0."""


@dataclass(frozen=True, slots=True)
class LotStock:
    lot: str
    on_hand: float
    expires: datetime


@dataclass(frozen=True, slots=True)
class Usage:
    at: datetime
    lot: str
    quantity: float


@dataclass(frozen=True, slots=True)
class Stock:
    """One material at one station: its lots, what is on order, and the rules for reordering it."""

    material: str
    unit: str
    min_stock: float
    lead_time: timedelta
    lots: tuple[LotStock, ...] = ()
    on_order: float = 0.0
    #: Daily use assumed while there is no recorded usage in the window.
    planned_daily_use: float = 0.0
    #: Orders come in multiples of this (a case of 12 cans); 0 means any quantity.
    pack_size: float = 0.0
    #: Recorded usage kept for the rate (only the last ``window``).
    usage: tuple[Usage, ...] = ()
    window: timedelta = timedelta(days=30)

    def usable(self, at: datetime) -> float:
        """Stock in lots that are still in date at ``at``."""
        return sum(lot.on_hand for lot in self.lots if lot.expires > at)

    def daily_use(self, at: datetime) -> float:
        """Average daily use over the window before ``at``, or the planned rate with no history."""
        since = at - self.window
        used = sum(u.quantity for u in self.usage if since < u.at <= at)
        if used == 0:
            return self.planned_daily_use
        return used / (self.window / timedelta(days=1))


@dataclass(frozen=True, slots=True)
class ReorderSignal:
    """Order ``quantity`` of ``material`` now: the projection one lead time ahead is below the minimum."""

    material: str
    quantity: float
    unit: str
    projected: float
    min_stock: float
    message: str
    #: Lots whose stock will have expired before an order placed now arrives.
    expiring: tuple[str, ...] = ()


def use(stock: Stock, *, lot: str, quantity: float, at: datetime) -> Stock:
    """Take ``quantity`` from ``lot``; the usage is kept for the rate (within the window)."""
    if quantity <= 0:
        raise StockError(f"{stock.material}: a usage must be positive, got {quantity:g}")
    held = next((item for item in stock.lots if item.lot == lot), None)
    if held is None:
        raise StockError(f"{stock.material}: no lot {lot!r} at this station")
    if quantity > held.on_hand:
        raise StockError(
            f"{stock.material} lot {lot} holds {held.on_hand:g} {stock.unit}; cannot use {quantity:g}"
        )
    lots = tuple(
        replace(item, on_hand=item.on_hand - quantity) if item.lot == lot else item for item in stock.lots
    )
    since = at - stock.window
    usage = (*(u for u in stock.usage if u.at > since), Usage(at, lot, quantity))
    return replace(stock, lots=lots, usage=usage)


def order(stock: Stock, *, quantity: float) -> Stock:
    """An order was placed: it counts toward the projection until received."""
    if quantity <= 0:
        raise StockError(f"{stock.material}: an order must be positive, got {quantity:g}")
    return replace(stock, on_order=stock.on_order + quantity)


def receive(stock: Stock, *, lot: str, quantity: float, expires: datetime) -> Stock:
    """A lot arrived: it joins the stock and leaves what is on order."""
    if quantity <= 0:
        raise StockError(f"{stock.material}: a receipt must be positive, got {quantity:g}")
    if any(item.lot == lot for item in stock.lots):
        raise StockError(f"{stock.material}: lot {lot} is already at this station")
    return replace(
        stock,
        lots=(*stock.lots, LotStock(lot, quantity, expires)),
        on_order=max(0.0, stock.on_order - quantity),
    )


def projected(stock: Stock, at: datetime) -> float:
    """Stock expected one lead time after ``at`` if nothing more is ordered."""
    arrives = at + stock.lead_time
    lead_days = stock.lead_time / timedelta(days=1)
    return stock.usable(arrives) + stock.on_order - stock.daily_use(at) * lead_days


def reorder(stock: Stock, at: datetime) -> ReorderSignal | None:
    """A reorder signal if the projection one lead time ahead is below the minimum stock, else ``None``."""
    ahead = projected(stock, at)
    if ahead >= stock.min_stock:
        return None
    lead_days = stock.lead_time / timedelta(days=1)
    target = stock.min_stock + stock.daily_use(at) * lead_days
    quantity = target - ahead
    if stock.pack_size > 0:
        quantity = math.ceil(quantity / stock.pack_size - 1e-9) * stock.pack_size
    arrives = at + stock.lead_time
    expiring = tuple(lot.lot for lot in stock.lots if lot.on_hand > 0 and at < lot.expires <= arrives)
    message = (
        f"reorder {quantity:g} {stock.unit} of {stock.material}: {ahead:g} {stock.unit} projected in "
        f"{lead_days:g} days is below the minimum {stock.min_stock:g}"
    )
    if expiring:
        message += f" (lots {', '.join(expiring)} expire before an order would arrive)"
    return ReorderSignal(stock.material, quantity, stock.unit, ahead, stock.min_stock, message, expiring)
