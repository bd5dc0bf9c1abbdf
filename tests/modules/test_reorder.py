"""Consumable stock: usage, receipts and a reorder signal one lead time ahead of running short."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from smart.modules.inventory import reorder

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def penetrant(**changes: object) -> reorder.Stock:
    stock = reorder.Stock(
        material="penetrant ZL-60D",
        unit="L",
        min_stock=20.0,
        lead_time=10 * DAY,
        lots=(reorder.LotStock("L-2291", 40.0, AT + 200 * DAY),),
        planned_daily_use=1.0,
    )
    return dataclasses.replace(stock, **changes)  # type: ignore[arg-type]


def test_plenty_in_date_gives_no_signal() -> None:
    # 40 L in date, 1 L/day planned over 10 days → 30 L projected ≥ 20 L.
    assert reorder.projected(penetrant(), AT) == pytest.approx(30.0)
    assert reorder.reorder(penetrant(), AT) is None


def test_usage_decrements_the_lot_and_drives_the_rate() -> None:
    stock = penetrant()
    for day in range(15):
        stock = reorder.use(stock, lot="L-2291", quantity=1.2, at=AT - day * DAY)
    assert stock.lots[0].on_hand == pytest.approx(22.0)
    # 18 L used in the 30-day window → 0.6 L/day; 22 − 6 = 16 L projected < 20 L.
    assert stock.daily_use(AT) == pytest.approx(0.6)
    signal = reorder.reorder(stock, AT)
    assert signal is not None
    assert signal.projected == pytest.approx(16.0)
    # Up to minimum + one lead time of use: 20 + 6 − 16 = 10 L.
    assert signal.quantity == pytest.approx(10.0)
    assert (
        "reorder 10 L of penetrant ZL-60D: 16 L projected in 10 days is below the minimum 20"
        in signal.message
    )


def test_old_usage_leaves_the_window() -> None:
    stock = reorder.use(penetrant(), lot="L-2291", quantity=30.0, at=AT - 40 * DAY)
    stock = reorder.use(stock, lot="L-2291", quantity=3.0, at=AT)
    assert [u.quantity for u in stock.usage] == [3.0]
    assert stock.daily_use(AT) == pytest.approx(0.1)


def test_a_lot_expiring_before_the_order_would_arrive_does_not_count() -> None:
    stock = penetrant(
        lots=(
            reorder.LotStock("L-2291", 10.0, AT + 200 * DAY),
            reorder.LotStock("L-1804", 25.0, AT + 5 * DAY),
        )
    )
    signal = reorder.reorder(stock, AT)
    assert signal is not None and signal.expiring == ("L-1804",)
    assert signal.projected == pytest.approx(0.0)
    assert "lots L-1804 expire before an order would arrive" in signal.message


def test_stock_on_order_counts_and_a_receipt_moves_it_onto_the_shelf() -> None:
    low = penetrant(lots=(reorder.LotStock("L-2291", 25.0, AT + 200 * DAY),))
    assert reorder.reorder(low, AT) is not None
    ordered = reorder.order(low, quantity=12.0)
    assert reorder.reorder(ordered, AT) is None
    received = reorder.receive(ordered, lot="L-2400", quantity=12.0, expires=AT + 365 * DAY)
    assert received.on_order == 0.0 and received.usable(AT) == pytest.approx(37.0)
    assert reorder.reorder(received, AT) is None


def test_orders_round_up_to_the_pack_size() -> None:
    stock = penetrant(lots=(reorder.LotStock("L-2291", 25.0, AT + 200 * DAY),), pack_size=4.0)
    signal = reorder.reorder(stock, AT)
    # projected 15, target 30 → 15 L, in cases of 4 L → 16 L.
    assert signal is not None and signal.quantity == pytest.approx(16.0)


def test_impossible_movements_are_refused_with_a_reason() -> None:
    with pytest.raises(reorder.StockError, match="holds 40 L; cannot use 41"):
        reorder.use(penetrant(), lot="L-2291", quantity=41.0, at=AT)
    with pytest.raises(reorder.StockError, match="no lot 'L-9'"):
        reorder.use(penetrant(), lot="L-9", quantity=1.0, at=AT)
    with pytest.raises(reorder.StockError, match="must be positive"):
        reorder.use(penetrant(), lot="L-2291", quantity=0.0, at=AT)
    with pytest.raises(reorder.StockError, match="already at this station"):
        reorder.receive(penetrant(), lot="L-2291", quantity=1.0, expires=AT)
    with pytest.raises(reorder.StockError, match="must be positive"):
        reorder.order(penetrant(), quantity=-1.0)
