"""The stack light and buzzer: three lamps and a sounder showing what :mod:`.alerts` decided.

Which colour and whether the buzzer sounds are worked out by the alert board
(AlertBroadcast: green allowed, amber warning, red blocked; the buzzer while
a critical alert waits for someone), which publishes them on the station's
alert subject (:class:`smart.bus.messages.AlertNotice`).
This file only puts that on the lamps: exactly one lamp lit at a time. When
the colour changes the old lamp goes out before the new one lights, so the
tower never shows two colours at once (for an instant it shows none).

The lamps and buzzer are gpiozero output devices (``LED``, ``Buzzer``, or
anything with ``on()``, ``off()`` and ``is_active``); building them from the
pin map is :mod:`smart.modules.safety.gpio`'s job.
"""

from __future__ import annotations

from typing import Protocol

from smart.bus import messages


class Output(Protocol):
    """A digital output as gpiozero has it."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    @property
    def is_active(self) -> bool: ...


class StackLight:
    """A green/amber/red tower and a buzzer, driven from a colour and a buzzer flag."""

    def __init__(self, *, green: Output, amber: Output, red: Output, buzzer: Output) -> None:
        self._lamps: dict[messages.Light, Output] = {"green": green, "amber": amber, "red": red}
        self._buzzer = buzzer

    def show(self, light: messages.Light, *, buzzer: bool) -> None:
        """Light ``light`` alone and sound or silence the buzzer."""
        if light not in self._lamps:
            raise ValueError(f"stack light colour {light!r} is not green, amber or red")
        for colour, lamp in self._lamps.items():
            if colour != light:
                lamp.off()
        self._lamps[light].on()
        if buzzer:
            self._buzzer.on()
        else:
            self._buzzer.off()

    def show_board(self, board: messages.Lit) -> None:
        """The board's colour and buzzer, as the alert board decides them."""
        self.show(board.light, buzzer=board.buzzer)

    def dark(self) -> None:
        """Every lamp out and the buzzer quiet (shutting down)."""
        for lamp in self._lamps.values():
            lamp.off()
        self._buzzer.off()

    @property
    def lit(self) -> messages.Light | None:
        """The lamp that is on, or ``None`` when the tower is dark."""
        for colour, lamp in self._lamps.items():
            if lamp.is_active:
                return colour
        return None

    @property
    def buzzing(self) -> bool:
        return bool(self._buzzer.is_active)
