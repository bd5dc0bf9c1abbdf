"""Which GPIO pin drives what at a station: the pin map, read from the settings and checked.

A station has six wires to its Pi: three stack-light lamps (green, amber,
red), a buzzer, the interlock relay and the e-stop. The numbers are BCM GPIO
numbers (``GPIO17``, not header pin 11). The defaults are a Pi 5 HAT layout
that stays clear of the I2C (2, 3), SPI (7–11) and UART (14, 15) pins:

========  ====  ==========================================
role      BCM   wiring
========  ====  ==========================================
green     5     lamp driver, on = high
amber     6     lamp driver, on = high
red       13    lamp driver, on = high
buzzer    19    buzzer driver, on = high
relay     26    interlock relay driver (``gpio_relay_active_high``)
estop     17    e-stop contact, normally closed to ground
========  ====  ==========================================

The e-stop is wired *normally closed* against the internal pull-up: a healthy
loop holds the input low, and a press or a broken wire lets it float high,
which reads as pressed. The relay is energised only by a driven output, so a
pin that goes back to an input (process exit, device closed) drops it.

A pin map that reuses a pin, or names a pin that is not a header GPIO, is
refused with :class:`PinMapError` naming the setting to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from smart import settings as settings_

Role = Literal["green", "amber", "red", "buzzer", "relay", "estop"]
ROLES: tuple[Role, ...] = ("green", "amber", "red", "buzzer", "relay", "estop")

#: What each role is, for error messages.
DESCRIPTIONS: Mapping[Role, str] = MappingProxyType(
    {
        "green": "the green lamp",
        "amber": "the amber lamp",
        "red": "the red lamp",
        "buzzer": "the buzzer",
        "relay": "the interlock relay",
        "estop": "the e-stop input",
    }
)

#: BCM GPIOs on the 40-pin header; 0 and 1 are the HAT ID EEPROM bus (ID_SD, ID_SC) and stay free.
HEADER_GPIOS = range(2, 28)


class PinMapError(ValueError):
    """A pin map that cannot be wired: a pin used twice or not on the header."""


def setting(role: Role) -> str:
    """The settings field (and, upper-cased with ``SMART_``, the variable) that sets ``role``'s pin."""
    return f"gpio_{role}_pin"


@dataclass(frozen=True, slots=True)
class PinMap:
    """BCM pin numbers of one station's outputs and e-stop input, checked on construction."""

    green: int
    amber: int
    red: int
    buzzer: int
    relay: int
    estop: int
    relay_active_high: bool = True
    estop_bounce_s: float = 0.02
    #: Pulse the relay output at this rate while energised (a watchdog relay); None: a steady level.
    relay_pulse_hz: float | None = None

    def __post_init__(self) -> None:
        taken: dict[int, Role] = {}
        for role in ROLES:
            pin = self.pin(role)
            if pin not in HEADER_GPIOS:
                raise PinMapError(
                    f"{setting(role)} = {pin}: {DESCRIPTIONS[role]} needs a header GPIO,"
                    f" BCM {HEADER_GPIOS.start}–{HEADER_GPIOS.stop - 1}"
                    " (0 and 1 are the HAT ID EEPROM bus)"
                )
            if pin in taken:
                other = taken[pin]
                raise PinMapError(
                    f"{setting(role)} = {pin}: GPIO{pin} is already {DESCRIPTIONS[other]}"
                    f" ({setting(other)}); each pin drives one thing"
                )
            taken[pin] = role
        if self.estop_bounce_s < 0:
            raise PinMapError(f"gpio_estop_bounce_ms = {self.estop_bounce_s * 1000:g}: must not be negative")
        if self.relay_pulse_hz is not None and not 0 < self.relay_pulse_hz <= 1000:
            raise PinMapError(
                f"gpio_relay_pulse_hz = {self.relay_pulse_hz:g}: must be above 0 and at most 1000"
            )

    def pin(self, role: Role) -> int:
        value: int = getattr(self, role)
        return value

    @classmethod
    def from_settings(cls, settings: settings_.Settings) -> PinMap:
        return cls(
            green=settings.gpio_green_pin,
            amber=settings.gpio_amber_pin,
            red=settings.gpio_red_pin,
            buzzer=settings.gpio_buzzer_pin,
            relay=settings.gpio_relay_pin,
            estop=settings.gpio_estop_pin,
            relay_active_high=settings.gpio_relay_active_high,
            estop_bounce_s=settings.gpio_estop_bounce_ms / 1000,
            relay_pulse_hz=settings.gpio_relay_pulse_hz or None,
        )
