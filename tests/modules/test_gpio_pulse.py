"""A pulsed interlock output: a killed station process drops the relay behind a retriggerable timer.

The relay module itself is hardware that is not here, so it is modelled in
the test the way such a module behaves (a retriggerable timer: the coil
holds while a rising edge came within its hold time). The station side is
real: :class:`StationGpio` on gpiozero's mock pins, in a child process that
reports each change of the relay pin through a pipe, and is then killed
with SIGKILL — the signal no ``atexit`` or ``finally`` ever sees.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from smart.modules.safety import gpio, pins
from smart.testing.patience import STATE_DEADLINE_S

PIN_MAP: dict[str, Any] = dict(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17)
HZ = 50.0
#: The modelled timer's hold: three pulse periods.
HOLD_S = 3 / HZ

CHILD = """
import os, sys, time
from gpiozero.pins import mock
from smart.modules.safety import gpio, pins

fd, hz = int(sys.argv[1]), float(sys.argv[2])

class ReportingPin(mock.MockPin):
    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            os.write(fd, b"1" if value else b"0")
        return changed

pin_map = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17, relay_pulse_hz=hz or None)
factory = gpio.simulated_factory(pin_map)
factory.pin(26, pin_class=ReportingPin)
station = gpio.StationGpio(pin_map, factory=factory, lease_s=1.0, on_estop=lambda pressed: None)
station.interlock.decide("allow", job="J-1", revision="penetrant@r1")
while True:
    time.sleep(0.2)
    station.interlock.renew(job="J-1", revision="penetrant@r1")
"""


@dataclass
class RelayModule:
    """The hardware after the pin: a retriggerable timer (``hold_s``) or, with None, the coil on the level."""

    hold_s: float | None
    level: bool = False
    last_rise: float | None = None
    rises: int = 0

    def feed(self, changes: bytes, at: float) -> None:
        for change in changes:
            rising = change == ord("1")
            if rising and not self.level:
                self.rises += 1
                self.last_rise = at
            self.level = rising

    def energised(self, at: float) -> bool:
        if self.hold_s is None:
            return self.level
        return self.last_rise is not None and at - self.last_rise <= self.hold_s


def run_and_kill(hz: float, module: RelayModule) -> tuple[float, float]:
    """Run the station until the module energises, SIGKILL it; (kill time, time its pin went quiet)."""
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(write_end), str(hz)], pass_fds=(write_end,), env=os.environ.copy()
    )
    os.close(write_end)
    try:
        deadline = time.monotonic() + 20
        while not (module.energised(time.monotonic()) and (hz == 0 or module.rises >= 5)):
            assert time.monotonic() < deadline, "the station never energised the relay"
            assert child.poll() is None, f"the station process ended: {child.returncode}"
            ready, _, _ = select.select([read_end], [], [], 0.5)
            if ready:
                module.feed(os.read(read_end, 4096), time.monotonic())
        killed_at = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        quiet_at = killed_at
        while True:  # the pipe ends when the kernel closes the dead process's end
            ready, _, _ = select.select([read_end], [], [], 5)
            assert ready, "the killed station's pipe never closed"
            data = os.read(read_end, 4096)
            if not data:
                break
            quiet_at = time.monotonic()
            module.feed(data, quiet_at)
        return killed_at, quiet_at
    finally:
        os.close(read_end)
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_a_killed_station_stops_the_pulses_and_the_watchdog_relay_drops_within_its_hold_time() -> None:
    module = RelayModule(hold_s=HOLD_S)
    killed_at, quiet_at = run_and_kill(HZ, module)
    assert quiet_at - killed_at < 1.0  # nothing moves the pin once the process is gone
    time.sleep(HOLD_S * 2)
    assert not module.energised(time.monotonic())


def test_a_killed_station_on_a_steady_output_leaves_the_relay_energised_which_is_why_pulses_exist() -> None:
    module = RelayModule(hold_s=None)
    run_and_kill(0, module)
    time.sleep(HOLD_S * 2)
    assert module.energised(time.monotonic())  # the level stays where the dead process left it


def test_pulses_run_only_while_the_gate_allows() -> None:
    pin_map = pins.PinMap(**PIN_MAP, relay_pulse_hz=HZ)
    with gpio.simulated(pin_map, lease_s=5.0, on_estop=lambda pressed: None) as station:
        relay_pin = station.factory.pin(pin_map.relay)
        assert not station.interlock.energised
        station.interlock.decide("allow", job="J-1", revision="penetrant@r1")
        assert station.interlock.energised
        deadline = time.monotonic() + STATE_DEADLINE_S  # a busy machine slows the thread: wait for the state
        while sum(1 for change in relay_pin.states if change.state) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        rises = sum(1 for change in relay_pin.states if change.state)
        assert rises >= 5, relay_pin.states  # the square wave runs while the gate allows
        station.interlock.decide("deny", job="J-1", revision="penetrant@r1")
        assert not station.interlock.energised and relay_pin.state == 0
        relay_pin.clear_states()
        time.sleep(0.2)
        assert [change.state for change in relay_pin.states] == [False]  # steady low: no edges


def test_a_pulse_rate_out_of_range_is_refused_naming_the_setting() -> None:
    with pytest.raises(pins.PinMapError, match="gpio_relay_pulse_hz = 5000"):
        pins.PinMap(**PIN_MAP, relay_pulse_hz=5000)
