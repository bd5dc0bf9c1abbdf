"""A station's stack light, buzzer, interlock relay and e-stop on gpiozero's MockFactory pins.

The relay is energised only while the gate allows the current job, and drops
by itself on a deny, the job's end, a lost contract revision, the e-stop, a
silent or crashed controller, closing and process exit.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from gpiozero.pins import mock

from smart.modules.alert_broadcast import alerts
from smart.modules.safety import gpio, interlock, pins
from smart.testing.patience import STATE_DEADLINE_S

PIN_MAP = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17)
LEASE_S = 0.3
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


class Station:
    """A simulated station and what its e-stop callback heard."""

    def __init__(self, factory: mock.MockFactory) -> None:
        self.estop_events: list[bool] = []
        self.factory = factory
        self.hw = gpio.StationGpio(
            PIN_MAP, factory=factory, lease_s=LEASE_S, on_estop=self.estop_events.append
        )

    def level(self, role: pins.Role) -> bool:
        return bool(self.factory.pin(PIN_MAP.pin(role)).state)

    @property
    def relay(self) -> bool:
        return self.level("relay")

    @property
    def lamps(self) -> list[str]:
        return [colour for colour in ("green", "amber", "red") if self.level(colour)]

    def press_estop(self) -> None:
        self.factory.pin(PIN_MAP.estop).drive_high()  # the normally-closed loop opens

    def release_estop(self) -> None:
        self.factory.pin(PIN_MAP.estop).drive_low()

    def gate(
        self, outcome: interlock.Outcome, *, job: str = "J-1001", revision: str | None = "pt-1@7"
    ) -> None:
        """What the station runtime does with a gate decision: the relay, and the board the light shows."""
        self.hw.interlock.decide(outcome, job=job, revision=revision)
        self.hw.show_board(alerts.gate(alerts.Board(), outcome, at=NOW))


@pytest.fixture
def station() -> Iterator[Station]:
    made = Station(gpio.simulated_factory(PIN_MAP))
    yield made
    made.hw.close()


def wait_until(condition: Callable[[], bool], *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_station_starts_with_the_relay_off_and_amber_until_the_gate_decides(station: Station) -> None:
    assert not station.relay
    assert station.lamps == ["amber"]
    assert station.estop_events == []


def test_allowed_job_lights_green_and_energises_the_relay(station: Station) -> None:
    station.gate("allow")
    assert station.relay
    assert station.lamps == ["green"]
    assert station.hw.interlock.state.reason == "allowed: job J-1001 under revision pt-1@7"


def test_warning_lights_amber_and_the_work_goes_on(station: Station) -> None:
    station.gate("warn")
    assert station.relay
    assert station.lamps == ["amber"]


def test_deny_lights_red_and_drops_the_relay(station: Station) -> None:
    station.gate("allow")
    station.gate("deny")
    assert not station.relay
    assert station.lamps == ["red"]
    assert station.hw.interlock.state.reason == "denied: job J-1001"


class Lamp(mock.MockPin):  # type: ignore[misc]
    """A mock lamp pin that notes how many of the tower's lamps were lit after each of its changes."""

    tower: list[Lamp]
    seen: list[int]

    def _change_state(self, value: bool) -> bool:
        changed: bool = super()._change_state(value)
        if changed:
            self.seen.append(sum(lamp.state for lamp in self.tower))
        return changed


def test_exactly_one_lamp_is_lit_through_every_change() -> None:
    factory = gpio.simulated_factory(PIN_MAP)
    tower = [factory.pin(pin, pin_class=Lamp) for pin in (PIN_MAP.green, PIN_MAP.amber, PIN_MAP.red)]
    seen: list[int] = []
    for lamp in tower:
        lamp.tower, lamp.seen = tower, seen
    station = Station(factory)
    try:
        for outcome, colour in [("allow", "green"), ("deny", "red"), ("warn", "amber"), ("allow", "green")]:
            station.gate(outcome)  # type: ignore[arg-type]
            assert station.lamps == [colour]
    finally:
        station.hw.close()
    assert seen and max(seen) == 1, "never two colours at once"


def test_green_is_never_shown_while_the_relay_is_off(station: Station) -> None:
    station.hw.show_board(alerts.gate(alerts.Board(), "allow", at=NOW))
    assert not station.relay
    assert station.lamps == ["amber"]


def test_unacknowledged_critical_alert_sounds_the_buzzer_and_lights_red(station: Station) -> None:
    station.gate("allow")
    board = alerts.gate(alerts.Board(), "allow", at=NOW)
    board, alert, _ = alerts.raise_alert(
        board,
        severity="critical",
        source="tam-panel",
        message="TAM panel: indications missing",
        at=NOW,
        by="pt-1",
    )
    station.hw.show_board(board)
    assert station.level("buzzer")
    assert station.lamps == ["red"]
    board, _ = alerts.acknowledge(board, alert.id, by="level-2 inspector", at=NOW)
    station.hw.show_board(board)
    assert not station.level("buzzer")
    assert station.lamps == ["red"]


def test_estop_press_drops_the_relay_at_once_lights_red_and_is_recorded(station: Station) -> None:
    station.gate("allow")
    station.press_estop()
    assert not station.relay
    assert station.lamps == ["red"]
    assert station.estop_events == [True]
    state = station.hw.interlock.state
    assert state.estop_pressed and state.estop_latched
    assert state.reason == "e-stop pressed: release it and reset"


def test_estop_blocks_until_released_and_then_reset(station: Station) -> None:
    station.gate("allow")
    station.press_estop()
    station.gate("allow")
    assert not station.relay
    with pytest.raises(interlock.InterlockError, match="still pressed"):
        station.hw.interlock.reset()

    station.release_estop()
    assert station.estop_events == [True, False]
    station.gate("allow")
    assert not station.relay, "released is not reset"
    assert station.lamps == ["red"]

    station.hw.interlock.reset()
    assert not station.relay, "a reset waits for a fresh gate decision"
    station.gate("allow")
    assert station.relay
    assert station.lamps == ["green"]
    assert station.estop_events == [True, False]


def test_estop_with_a_broken_wire_reads_as_pressed_from_the_start() -> None:
    # a plain MockFactory pin floats up to the pull-up: nothing holds the normally-closed loop shut
    broken = Station(mock.MockFactory())
    try:
        assert broken.estop_events == [True]
        broken.gate("allow")
        assert not broken.relay
        assert broken.lamps == ["red"]
    finally:
        broken.hw.close()


def test_relay_drops_by_itself_when_the_controller_stops_renewing(station: Station) -> None:
    station.gate("allow")
    time.sleep(LEASE_S / 2)
    station.hw.interlock.renew(job="J-1001", revision="pt-1@7")
    assert station.relay
    assert wait_until(lambda: not station.relay, within=STATE_DEADLINE_S)
    assert station.lamps == ["red"]
    assert station.hw.interlock.state.reason.startswith(
        "watchdog: the controller did not re-affirm within 300 ms"
    )
    station.hw.interlock.renew(job="J-1001", revision="pt-1@7")
    assert not station.relay, "renewing does not bring back a dropped relay; only a gate decision does"


def test_renewing_within_the_lease_keeps_the_relay_energised(station: Station) -> None:
    station.gate("allow")
    until = time.monotonic() + LEASE_S * 3
    while time.monotonic() < until:
        station.hw.interlock.renew(job="J-1001", revision="pt-1@7")
        assert station.relay
        time.sleep(LEASE_S / 6)
    assert station.relay


def test_expired_contract_revision_drops_the_relay(station: Station) -> None:
    station.gate("allow")
    station.hw.interlock.renew(job="J-1001", revision=None)
    assert not station.relay
    assert station.hw.interlock.state.reason == "contract revision pt-1@7 is not active any more"
    station.gate("allow", revision=None)
    assert not station.relay
    assert station.hw.interlock.state.reason == "no active contract revision for job J-1001"


def test_a_new_contract_revision_needs_a_new_gate_decision(station: Station) -> None:
    station.gate("allow")
    station.hw.interlock.renew(job="J-1001", revision="pt-1@8")
    assert not station.relay
    station.gate("allow", revision="pt-1@8")
    assert station.relay


def test_job_end_drops_the_relay(station: Station) -> None:
    station.gate("allow")
    station.hw.interlock.end_job()
    assert not station.relay
    assert station.hw.interlock.state.reason == "job J-1001 ended"


def test_exception_in_the_controlling_code_drops_the_relay(station: Station) -> None:
    with pytest.raises(RuntimeError, match="decoder thread died"):
        with station.hw.interlock.guard():
            station.gate("allow")
            assert station.relay
            raise RuntimeError("decoder thread died")
    assert not station.relay
    assert station.lamps == ["red"]
    assert station.hw.interlock.state.reason == "controller failed: RuntimeError: decoder thread died"


async def test_crashed_controller_task_drops_the_relay(station: Station) -> None:
    async def control() -> None:
        with station.hw.interlock.guard():
            station.gate("allow")
            for _ in range(3):
                station.hw.interlock.renew(job="J-1001", revision="pt-1@7")
                await asyncio.sleep(LEASE_S / 6)
            raise KeyError("traveler J-1001")

    task = asyncio.create_task(control())
    await asyncio.sleep(LEASE_S / 4)
    assert station.relay
    with pytest.raises(KeyError):
        await task
    assert not station.relay
    assert station.hw.interlock.state.reason == "controller failed: KeyError: 'traveler J-1001'"


async def test_a_blocked_event_loop_loses_the_relay_by_the_watchdog(station: Station) -> None:
    station.gate("allow")
    time.sleep(LEASE_S * 2)  # noqa: ASYNC251 - on purpose: the loop is stuck, only the watchdog runs
    assert not station.relay
    assert station.lamps == ["red"]


def test_estop_callback_failing_does_not_keep_the_relay_energised() -> None:
    def broken_ledger(pressed: bool) -> None:
        raise OSError("ledger disk full")

    factory = gpio.simulated_factory(PIN_MAP)
    hw = gpio.StationGpio(PIN_MAP, factory=factory, lease_s=LEASE_S, on_estop=broken_ledger)
    try:
        hw.interlock.decide("allow", job="J-1001", revision="pt-1@7")
        factory.pin(PIN_MAP.estop).drive_high()
        assert not factory.pin(PIN_MAP.relay).state
        assert hw.interlock.state.estop_latched
    finally:
        hw.close()


def test_closing_drops_the_relay_darkens_the_tower_and_releases_the_pins(station: Station) -> None:
    station.gate("allow")
    station.hw.close()
    assert not station.relay
    assert station.lamps == []
    assert not station.level("buzzer")
    station.hw.close()
    with pytest.raises(interlock.InterlockError, match="closed"):
        station.hw.interlock.decide("allow", job="J-1001", revision="pt-1@7")
    # the pins are free again: the station can be opened anew on the same factory
    again = gpio.StationGpio(PIN_MAP, factory=station.factory, lease_s=LEASE_S, on_estop=lambda pressed: None)
    again.close()


def test_active_low_relay_board_is_off_when_its_pin_is_high() -> None:
    active_low = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17, relay_active_high=False)
    factory = gpio.simulated_factory(active_low)
    hw = gpio.StationGpio(active_low, factory=factory, lease_s=LEASE_S, on_estop=lambda pressed: None)
    try:
        assert factory.pin(26).state
        hw.interlock.decide("allow", job="J-1001", revision="pt-1@7")
        assert not factory.pin(26).state
        assert hw.relay.is_active
    finally:
        hw.close()


def test_process_exit_drops_the_relay() -> None:
    script = textwrap.dedent(
        """
        import atexit
        from smart.modules.safety import gpio, pins

        pin_map = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17)
        factory = gpio.simulated_factory(pin_map)
        # registered first, so it runs last: after the interlock's own exit handler
        atexit.register(lambda: print("relay at exit:", factory.pin(26).state, flush=True))
        hw = gpio.StationGpio(pin_map, factory=factory, lease_s=30, on_estop=print)
        hw.interlock.decide("allow", job="J-1001", revision="pt-1@7")
        print("relay while allowed:", factory.pin(26).state, flush=True)
        raise SystemExit("the station runtime died")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "relay while allowed: True" in done.stdout, done.stderr
    assert "relay at exit: False" in done.stdout, done.stderr


def test_no_gpio_here_says_so_instead_of_simulating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    try:
        factory = gpio.pi_factory()
    except gpio.NoGpio as err:
        assert "no GPIO here" in str(err)
        assert "simulated" in str(err)
    else:  # on a Raspberry Pi
        assert not isinstance(factory, mock.MockFactory)
        factory.close()
