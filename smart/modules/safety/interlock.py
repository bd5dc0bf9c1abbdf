"""The interlock relay: energised only while the Gatekeeper allows the current job, and fail-safe.

The relay enables the process equipment (the penetrant line's pump, the
furnace door, the blast cabinet). It is **energised** only when all of these
hold at once:

- the Gatekeeper's last decision for the current job allowed it (``allow``
  or ``warn``: a warning lets the work go on, under an amber light);
- there is an active contract revision to judge against;
- the e-stop is not pressed and has been reset since it last was;
- the controlling code has re-affirmed the decision within the lease.

Anything else de-energises it at once: a deny, the job ending, the contract
revision gone (expired, withdrawn, never mirrored), the e-stop pressed, the
controller raising out of :meth:`Interlock.guard`, the controller going quiet
(a watchdog thread drops the relay when the lease runs out: a hung event loop
or a dead task stops renewing), closing, and process exit (``atexit``).

**The e-stop** is latched: pressing it drops the relay and blocks it; releasing
it is not enough — :meth:`Interlock.reset` must be called after the release,
and even then the relay waits for a fresh allow decision. Every press and
release goes to the ``on_estop(pressed)`` callback, which the station runtime
wires to the ledger (this file knows no ledger and no NATS: callbacks in,
state out). Callbacks run outside the interlock's lock, after the relay has
already dropped, from whichever thread saw the change (gpiozero's, the
watchdog's or the caller's); an async caller hands them to its loop with
``loop.call_soon_threadsafe``.

What a steady output cannot do: a ``SIGKILL`` (the kernel's out-of-memory
killer sends one) or a kernel crash leaves a Pi's output latched where it
was. So the relay may instead be driven through :class:`PulsedRelay`
(``gpio_relay_pulse_hz``): a square wave while energised, into a
retriggerable timer (a "watchdog relay" module, or a charge pump) that holds
the coil only while edges keep coming. Whatever stops the pulses — the
process killed, hung, or the computer dead — drops the relay within the
timer's hold time, with no software left to do it. The e-stop must still
break the coil's supply in hardware as well.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

Outcome = Literal["allow", "warn", "deny"]


class Relay(Protocol):
    """The relay's output as gpiozero has it (``DigitalOutputDevice``)."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    @property
    def is_active(self) -> bool: ...


class PulsedRelay:
    """A relay behind a retriggerable timer: a square wave while on, a steady low while off.

    ``output`` is the gpiozero ``DigitalOutputDevice`` on the relay pin; its
    blink thread makes the edges, so they stop when the process does.
    """

    def __init__(self, output: Any, hz: float) -> None:
        if hz <= 0:
            raise ValueError(f"the relay pulse rate must be positive, not {hz} Hz")
        self._output = output
        self._half_period = 1 / (2 * hz)
        self._on = False

    def on(self) -> None:
        if not self._on:
            self._output.blink(on_time=self._half_period, off_time=self._half_period, background=True)
            self._on = True

    def off(self) -> None:
        self._output.off()  # stops the blinking, then holds the pin low
        self._on = False

    @property
    def is_active(self) -> bool:
        return self._on


class EStop(Protocol):
    """The e-stop input as gpiozero has it (``DigitalInputDevice``, pull-up, normally closed).

    *Active* means the normally-closed loop is closed: the e-stop is **not** pressed.
    """

    @property
    def is_active(self) -> bool: ...

    when_activated: Callable[[], None] | None
    when_deactivated: Callable[[], None] | None


class InterlockError(RuntimeError):
    """A request the interlock refuses: a reset while the e-stop is still pressed, use after close."""


@dataclass(frozen=True, slots=True)
class State:
    """What the interlock is doing and why, for the light, the kiosk and the record."""

    energised: bool
    #: Why the relay is as it is, in plain words.
    reason: str
    job: str | None = None
    revision: str | None = None
    estop_pressed: bool = False
    #: Pressed since the last reset: nothing energises until :meth:`Interlock.reset`.
    estop_latched: bool = False
    #: Dropped by a fault (e-stop, lease, controller failure) rather than a decision.
    fault: bool = False


class Interlock:
    """Drives one relay from gate decisions, with an e-stop latch and a watchdog lease."""

    def __init__(
        self,
        *,
        relay: Relay,
        estop: EStop,
        lease_s: float,
        on_estop: Callable[[bool], None],
        on_change: Callable[[State], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"the interlock lease must be positive, not {lease_s} s")
        self._relay = relay
        self._estop = estop
        self._lease_s = lease_s
        self._on_estop = on_estop
        self._on_change = on_change
        self._clock = clock
        self._cond = threading.Condition(threading.RLock())
        #: Serialises callback delivery, so they arrive in the order the changes happened.
        self._delivery = threading.RLock()
        self._outbox: list[tuple[bool | None, State]] = []
        self._closed = False
        self._lease_until = 0.0
        self._relay.off()
        self._state = State(energised=False, reason="waiting for a gate decision")
        # listen first, then look: a press between the two is seen either way
        self._estop.when_deactivated = self._estop_opened
        self._estop.when_activated = self._estop_closed
        with self._cond:
            if self._estop_pressed() and not self._state.estop_pressed:
                self._press()
        self._watchdog = threading.Thread(target=self._watch, name="interlock-watchdog", daemon=True)
        self._watchdog.start()
        atexit.register(self.close)
        self._flush()

    # -- what the caller sees ---------------------------------------------------------

    @property
    def state(self) -> State:
        with self._cond:
            return self._state

    @property
    def energised(self) -> bool:
        return self.state.energised

    @property
    def lease_s(self) -> float:
        return self._lease_s

    # -- what the caller tells it -----------------------------------------------------

    def decide(self, outcome: Outcome, *, job: str | None, revision: str | None) -> State:
        """The Gatekeeper's decision for ``job``, judged against contract ``revision``.

        ``allow`` and ``warn`` energise the relay (and start its lease) unless
        something else holds it open; ``deny`` drops it.
        """
        with self._cond:
            self._check_open()
            state = self._decide(outcome, job=job, revision=revision)
        self._flush()
        return state

    def renew(self, *, job: str | None, revision: str | None) -> State:
        """Re-affirm the allow for ``job`` under ``revision``: the lease starts again.

        Called by the controlling code at least every ``lease_s`` (a third of
        it is a good rhythm). A different job, a missing or changed revision
        or a pressed e-stop drops the relay; a relay that is off stays off
        (only :meth:`decide` energises).
        """
        with self._cond:
            self._check_open()
            state = self._renew(job=job, revision=revision)
        self._flush()
        return state

    def end_job(self) -> State:
        """The current job is over: the relay drops until the next allowed job."""
        with self._cond:
            job = self._state.job
            state = self._set(False, f"job {job} ended" if job else "no current job", job=None, revision=None)
        self._flush()
        return state

    def drop(self, reason: str, *, fault: bool = True) -> State:
        """De-energise for a reason of the caller's (a lost hub link the runtime judges fatal, a test)."""
        with self._cond:
            state = self._set(False, reason, fault=fault)
        self._flush()
        return state

    def reset(self) -> State:
        """Clear the e-stop latch after the e-stop has been released; the relay waits for a decision."""
        with self._cond:
            self._check_open()
            if self._estop_pressed():
                raise InterlockError("the e-stop is still pressed: release it before resetting")
            if self._state.estop_latched:
                self._set(
                    False,
                    "e-stop reset: waiting for a gate decision",
                    job=None,
                    revision=None,
                    estop_latched=False,
                    fault=False,
                )
            state = self._state
        self._flush()
        return state

    @contextlib.contextmanager
    def guard(self) -> Iterator[Interlock]:
        """Wrap the controlling code: when it raises or leaves, the relay drops.

        ``with interlock.guard(): await control_loop()`` — an exception drops
        the relay, naming it as the reason, before it propagates.
        """
        try:
            yield self
        except BaseException as err:
            self.drop(f"controller failed: {type(err).__name__}: {err}")
            raise
        finally:
            if self.energised:
                self.drop("controller stopped", fault=False)

    def close(self) -> None:
        """Drop the relay for good and stop the watchdog (the devices stay open: their owner closes them)."""
        with self._cond:
            if self._closed:
                return
            self._set(False, "interlock closed", fault=self._state.fault)
            self._closed = True
            self._estop.when_activated = None
            self._estop.when_deactivated = None
            self._cond.notify_all()
        atexit.unregister(self.close)
        if self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)
        self._flush()

    # -- inside: called with the lock held ------------------------------------------------

    def _decide(self, outcome: str, *, job: str | None, revision: str | None) -> State:
        if outcome == "deny":
            return self._set(False, f"denied: job {job or '(none)'}", job=job, revision=revision)
        if outcome not in ("allow", "warn"):
            return self._set(False, f"unknown gate outcome {outcome!r}", job=job, revision=revision)
        if self._estop_pressed():
            return self._press()
        if self._state.estop_latched:
            return self._set(
                False, "e-stop was pressed: reset it first", job=job, revision=revision, fault=True
            )
        if not job:
            return self._set(False, "no current job", job=None, revision=revision)
        if not revision:
            return self._set(False, f"no active contract revision for job {job}", job=job, revision=None)
        self._lease_until = self._clock() + self._lease_s
        reason = f"allowed: job {job} under revision {revision}"
        if outcome == "warn":
            reason += " (with warnings)"
        return self._set(True, reason, job=job, revision=revision)

    def _renew(self, *, job: str | None, revision: str | None) -> State:
        current = self._state
        if not current.energised:
            return current
        if self._estop_pressed():
            return self._press()
        if job != current.job:
            return self._set(False, f"job changed from {current.job} to {job or '(none)'}", job=job)
        if not revision:
            return self._set(
                False, f"contract revision {current.revision} is not active any more", revision=None
            )
        if revision != current.revision:
            return self._set(
                False,
                f"contract revision changed from {current.revision} to {revision}: needs a new gate decision",
                revision=revision,
            )
        self._lease_until = self._clock() + self._lease_s
        self._cond.notify_all()
        return current

    def _set(
        self,
        energised: bool,
        reason: str,
        *,
        fault: bool = False,
        estop: bool | None = None,
        **changes: object,
    ) -> State:
        """Switch the relay (dropping first, always) and record why; callbacks wait in the outbox."""
        if self._closed:
            energised = False
        if not energised:
            self._relay.off()
        old = self._state
        new = replace(old, energised=energised, reason=reason, fault=fault and not energised, **changes)  # type: ignore[arg-type]
        if energised:
            self._relay.on()
        self._state = new
        self._cond.notify_all()
        if new != old or estop is not None:
            self._outbox.append((estop, new))
        return new

    def _press(self) -> State:
        return self._set(
            False,
            "e-stop pressed: release it and reset",
            fault=True,
            estop=None if self._state.estop_pressed else True,
            estop_pressed=True,
            estop_latched=True,
        )

    def _estop_pressed(self) -> bool:
        return not self._estop.is_active

    def _check_open(self) -> None:
        if self._closed:
            raise InterlockError("the interlock is closed")

    # -- inside: gpiozero's and the watchdog's threads ---------------------------------

    def _estop_opened(self) -> None:
        with self._cond:
            if not self._closed:
                self._press()
        self._flush()

    def _estop_closed(self) -> None:
        with self._cond:
            if not self._closed and self._state.estop_pressed:
                self._set(
                    False,
                    "e-stop released: reset it before work resumes",
                    fault=True,
                    estop=False,
                    estop_pressed=False,
                )
        self._flush()

    def _watch(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                if not self._state.energised:
                    self._cond.wait()
                    continue
                remaining = self._lease_until - self._clock()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self._set(
                    False,
                    f"watchdog: the controller did not re-affirm within {self._lease_s * 1000:g} ms",
                    fault=True,
                )
            self._flush()

    def _flush(self) -> None:
        """Deliver the queued callbacks, in order, with the state lock released."""
        with self._delivery:
            while True:
                with self._cond:
                    if not self._outbox:
                        return
                    estop, state = self._outbox.pop(0)
                if estop is not None:
                    try:
                        self._on_estop(estop)
                    except Exception:
                        log.exception("the e-stop callback failed (pressed=%s)", estop)
                if self._on_change is not None:
                    try:
                        self._on_change(state)
                    except Exception:
                        log.exception("the interlock change callback failed")
