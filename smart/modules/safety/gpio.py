"""A station's GPIO: the gpiozero devices built from the pin map, the interlock and stack light on them.

Where the pins come from is a gpiozero *pin factory*:

- on a Raspberry Pi, gpiozero's default (lgpio on a Pi 5): :func:`pi_factory`;
- on a machine with no GPIO (a laptop, CI, the embedded floor's simulated
  stations) :func:`pi_factory` raises :class:`NoGpio` saying so, and the
  caller chooses to run simulated with :func:`simulated_factory`
  (gpiozero's ``MockFactory``: pins that hold state and can be driven, the
  same the tests use). Nothing falls back to simulation silently: a Pi
  whose GPIO library is missing must not look like a working station.

:class:`StationGpio` owns the six devices, the :class:`~.interlock.Interlock`
on the relay and e-stop and the :class:`~.stacklight.StackLight` on the lamps
and buzzer. The light shows the alert board (AlertBroadcast decides green,
amber, red and the buzzer and publishes them as
:class:`smart.bus.messages.AlertNotice`) with two overrides from the interlock: **red**
while the e-stop is pressed or latched or the relay dropped on a fault (the
watchdog, a controller crash), and **amber** rather than green while the
relay is off — green means "you may work", and the relay says whether that
is true. Closing drops the relay, darkens the tower and releases the pins.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gpiozero
from gpiozero.pins import mock

from smart import settings as settings_
from smart.bus import messages
from smart.modules.safety import interlock, pins, stacklight


class NoGpio(RuntimeError):
    """This machine has no GPIO gpiozero can drive; a simulated station can still run (MockFactory)."""


def pi_factory() -> Any:
    """gpiozero's default pin factory for this Pi (``GPIOZERO_PIN_FACTORY`` picks another).

    :class:`NoGpio` when none loads, with what each candidate said.
    """
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            return gpiozero.Device._default_pin_factory()
        except gpiozero.BadPinFactory as err:
            tried = "; ".join(str(w.message) for w in seen) or str(err)
            raise NoGpio(
                f"no GPIO here ({tried}): on a Raspberry Pi install python3-lgpio;"
                " elsewhere run the station with simulated GPIO"
            ) from err


class NormallyClosedLoop(mock.MockPin):  # type: ignore[misc]
    """A simulated e-stop input wired normally closed: the loop holds it low against the pull-up.

    ``drive_high()`` opens the loop (pressed), ``drive_low()`` closes it
    (released); setting the pull does not move it, as a real closed contact
    to ground outweighs the internal pull-up.
    """

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self._state = False
        self.clear_states()

    def _set_pull(self, value: str) -> None:
        if value not in ("floating", "up", "down"):
            raise gpiozero.PinInvalidPull("pull must be floating, up, or down")
        self._pull = value


def simulated_factory(pin_map: pins.PinMap | None = None) -> mock.MockFactory:
    """Pins that exist only in memory: the embedded floor's stations and the tests.

    With ``pin_map``, its e-stop input is a :class:`NormallyClosedLoop`,
    released until something drives it high.
    """
    factory = mock.MockFactory()
    if pin_map is not None:
        factory.pin(pin_map.estop, pin_class=NormallyClosedLoop)
    return factory


def light_for(light: messages.Light, state: interlock.State) -> messages.Light:
    """The tower's colour: the board's ``light``; red on an e-stop or fault; not green, relay off."""
    if state.estop_pressed or state.estop_latched or state.fault:
        return "red"
    if light == "green" and not state.energised:
        return "amber"
    return light


class StationGpio:
    """The stack light, buzzer, interlock relay and e-stop of one station, on one pin factory."""

    def __init__(
        self,
        pin_map: pins.PinMap,
        *,
        factory: Any,
        lease_s: float,
        on_estop: Callable[[bool], None],
        on_change: Callable[[interlock.State], None] | None = None,
    ) -> None:
        self.pin_map = pin_map
        self.factory = factory
        self._on_change = on_change
        #: The colour and buzzer the alert board asks for (amber and quiet until it says).
        self._light: messages.Light = "amber"
        self._buzzer = False
        self._devices: list[Any] = []
        try:
            lamps = {
                role: self._open(gpiozero.LED, pin_map.pin(role), initial_value=False)
                for role in ("green", "amber", "red")
            }
            buzzer = self._open(gpiozero.Buzzer, pin_map.buzzer, initial_value=False)
            relay_output = self._open(
                gpiozero.DigitalOutputDevice,
                pin_map.relay,
                active_high=pin_map.relay_active_high,
                initial_value=False,
            )
            #: What the interlock switches: the output itself, or pulses on it for a watchdog relay.
            self.relay: interlock.Relay = (
                interlock.PulsedRelay(relay_output, pin_map.relay_pulse_hz)
                if pin_map.relay_pulse_hz
                else relay_output
            )
            self.estop = self._open(
                gpiozero.DigitalInputDevice,
                pin_map.estop,
                pull_up=True,
                bounce_time=pin_map.estop_bounce_s or None,
            )
            self.stacklight = stacklight.StackLight(
                green=lamps["green"], amber=lamps["amber"], red=lamps["red"], buzzer=buzzer
            )
            self.stacklight.show("amber", buzzer=False)
            self.interlock = interlock.Interlock(
                relay=self.relay,
                estop=self.estop,
                lease_s=lease_s,
                on_estop=on_estop,
                on_change=self._changed,
            )
        except BaseException:
            self._close_devices()
            raise
        self.refresh()

    @classmethod
    def from_settings(
        cls,
        settings: settings_.Settings,
        *,
        factory: Any,
        on_estop: Callable[[bool], None],
        on_change: Callable[[interlock.State], None] | None = None,
    ) -> StationGpio:
        """The station's hardware as the settings wire it (pin map, lease), on ``factory``."""
        return cls(
            pins.PinMap.from_settings(settings),
            factory=factory,
            lease_s=settings.gpio_interlock_lease_ms / 1000,
            on_estop=on_estop,
            on_change=on_change,
        )

    def _open(self, kind: Any, pin: int, **options: Any) -> Any:
        device = kind(pin, pin_factory=self.factory, **options)
        self._devices.append(device)
        return device

    # -- feeding it ---------------------------------------------------------------------

    def show(self, light: messages.Light, *, buzzer: bool) -> messages.Light:
        """Show what the alert board asks for (as published on the alert subject); returns what is lit."""
        self._light = light
        self._buzzer = buzzer
        return self.refresh()

    def show_board(self, board: messages.Lit) -> messages.Light:
        """The alert board changed (an alert, an acknowledgement, a gate decision): relight the tower."""
        return self.show(board.light, buzzer=board.buzzer)

    def refresh(self) -> messages.Light:
        light = light_for(self._light, self.interlock.state)
        self.stacklight.show(light, buzzer=self._buzzer)
        return light

    def _changed(self, state: interlock.State) -> None:
        # the interlock reports an e-stop found pressed while it is being built: refresh() runs after
        if hasattr(self, "interlock") and not getattr(self, "_closed", False):
            self.refresh()
        if self._on_change is not None:
            self._on_change(state)

    def simulate_estop(self, *, pressed: bool) -> None:
        """Press or release a simulated station's e-stop (opening or closing its normally-closed loop)."""
        pin = self.estop.pin
        if not isinstance(pin, mock.MockPin):
            raise NoGpio("only a simulated station's e-stop can be pressed from software")
        if pressed:
            pin.drive_high()
        else:
            pin.drive_low()

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Relay off first, the tower dark, every pin released; safe to call twice."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            self.interlock.close()
        finally:
            try:
                self.stacklight.dark()
            finally:
                self._close_devices()

    def _close_devices(self) -> None:
        for device in reversed(self._devices):
            if getattr(device, "closed", False):
                continue
            try:
                if hasattr(device, "off"):
                    device.off()
            finally:
                device.close()
        self._devices.clear()

    def __enter__(self) -> StationGpio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def simulated(
    pin_map: pins.PinMap,
    *,
    lease_s: float,
    on_estop: Callable[[bool], None],
    on_change: Callable[[interlock.State], None] | None = None,
) -> StationGpio:
    """A station on simulated pins, e-stop released, as the embedded floor runs it."""
    return StationGpio(
        pin_map,
        factory=simulated_factory(pin_map),
        lease_s=lease_s,
        on_estop=on_estop,
        on_change=on_change,
    )
