"""The floor's process supervisor: start in order, wait for health, restart on crash, stop everything.

Children run in sessions of their own, so a Ctrl-C in the terminal reaches
only the supervisor, which then stops them in reverse order (station leaves
before the hub, the database last). Each child also gets the parent-death
signal, so even a SIGKILLed supervisor leaves no server behind. A child that
crashes is restarted with exponential backoff; its state and restart count
are what the status page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("smart.supervisor")

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Health:
    """One probe's answer: healthy or not, and why not in words a person can act on."""

    healthy: bool
    detail: str = ""


HealthProbe = Callable[[], Awaitable[Health]]


class State(enum.StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(slots=True)
class ChildSpec:
    """How to run one server process of the floor."""

    name: str
    argv: list[str]
    health: HealthProbe
    log_path: Path
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], Awaitable[None]] | None = None
    env: dict[str, str] | None = None
    user: str | None = None
    cwd: Path | None = None
    start_timeout: float = 30.0
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    group: str | None = None


@dataclass(slots=True)
class ChildStatus:
    name: str
    state: State = State.PENDING
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    since: float = field(default_factory=time.time)
    detail: str = ""


class StartError(RuntimeError):
    """A child did not become healthy; the message names it and quotes its log."""


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it if the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Supervisor:
    """Runs a list of children in order and keeps them running until :meth:`stop`."""

    def __init__(
        self,
        children: list[ChildSpec],
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        stable_after: float = 30.0,
    ) -> None:
        self.children = children
        self.status: dict[str, ChildStatus] = {c.name: ChildStatus(c.name) for c in children}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stable_after = stable_after

    def spec(self, name: str) -> ChildSpec:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    def pid(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return proc.pid if proc is not None and proc.returncode is None else None

    async def start(self) -> None:
        """Start every child in order, each healthy before the next; on failure stop what started.

        Consecutive children of one ``group`` (the station agents, say) start side by side: they
        depend on what came before them, not on each other.
        """
        try:
            for wave in self._waves():
                for child in wave:
                    self._prepare(child)
                await asyncio.gather(*(self._spawn(child) for child in wave))
                await asyncio.gather(*(self._wait_healthy(child) for child in wave))
                for child in wave:
                    if child.after_ready is not None:
                        await child.after_ready()
                    self._watchers[child.name] = asyncio.create_task(
                        self._watch(child), name=f"watch-{child.name}"
                    )
        except BaseException:
            await self.stop()
            raise

    def _waves(self) -> list[list[ChildSpec]]:
        waves: list[list[ChildSpec]] = []
        for child in self.children:
            if waves and child.group is not None and waves[-1][-1].group == child.group:
                waves[-1].append(child)
            else:
                waves.append([child])
        return waves

    def _prepare(self, child: ChildSpec) -> None:
        if child.prepare is None:
            return
        try:
            child.prepare()
        except (OSError, RuntimeError, ValueError) as err:
            self.status[child.name].state = State.FAILED
            raise StartError(f"{child.name} could not be prepared: {err}") from err

    async def _spawn(self, child: ChildSpec) -> None:
        status = self.status[child.name]
        status.state = State.STARTING
        status.since = time.time()
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = os.open(child.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            proc = await asyncio.create_subprocess_exec(
                *child.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=child.env,
                cwd=child.cwd,
                # With a user, drop root's groups too: a group match would hide the others bits.
                user=child.user,
                group=child.user,
                extra_groups=[] if child.user is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(out)
        self._procs[child.name] = proc
        status.pid = proc.pid
        log.info("child.started", child=child.name, pid=proc.pid)

    async def _wait_healthy(self, child: ChildSpec) -> None:
        status = self.status[child.name]
        proc = self._procs[child.name]
        deadline = time.monotonic() + child.start_timeout
        last = Health(False, "not probed yet")
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                status.state = State.FAILED
                raise StartError(
                    f"{child.name} exited with code {proc.returncode} while starting; "
                    f"last lines of {child.log_path}:\n{_log_tail(child.log_path)}"
                )
            with contextlib.suppress(Exception):
                last = await child.health()
            if last.healthy:
                status.state = State.RUNNING
                status.since = time.time()
                status.detail = ""
                return
            await asyncio.sleep(0.05)
        status.state = State.FAILED
        raise StartError(
            f"{child.name} was not healthy within {child.start_timeout:.0f} s ({last.detail}); "
            f"last lines of {child.log_path}:\n{_log_tail(child.log_path)}"
        )

    async def _watch(self, child: ChildSpec) -> None:
        """Restart ``child`` whenever it exits, with backoff, until the supervisor stops."""
        status = self.status[child.name]
        failures = 0
        while True:
            proc = self._procs[child.name]
            started = time.monotonic()
            code = await proc.wait()
            if self._stopping:
                return
            status.last_exit = code
            status.pid = None
            if time.monotonic() - started > self._stable_after:
                failures = 0
            delay = min(self._backoff_max, self._backoff_initial * 2**failures)
            failures += 1
            status.state = State.RESTARTING
            status.detail = f"{_describe_exit(code)}; restarting in {delay:.1f} s"
            status.since = time.time()
            log.warning("child.exited", child=child.name, code=code, restart_in_s=delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._spawn(child)
                await self._wait_healthy(child)
            except StartError as err:
                status.state = State.RESTARTING
                status.detail = str(err).splitlines()[0]
                log.warning("child.restart_failed", child=child.name, error=status.detail)
                continue
            status.restarts += 1
            log.info("child.restarted", child=child.name, pid=self._procs[child.name].pid)

    async def stop_child(self, name: str) -> None:
        """Stop one child and keep it stopped (an outage on purpose) until :meth:`start_child`."""
        child = self.spec(name)
        watcher = self._watchers.pop(name, None)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self._terminate(child)
        self.status[name].detail = "stopped on request"

    async def start_child(self, name: str) -> None:
        """Start a child stopped by :meth:`stop_child` again and resume watching it."""
        child = self.spec(name)
        if self.pid(name) is not None:
            return
        await self._spawn(child)
        await self._wait_healthy(child)
        self._watchers[name] = asyncio.create_task(self._watch(child), name=f"watch-{name}")

    async def _terminate(self, child: ChildSpec) -> None:
        proc = self._procs.get(child.name)
        if proc is None:
            return
        status = self.status[child.name]
        if proc.returncode is None:
            status.state = State.STOPPING
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(child.stop_signal)
            try:
                await asyncio.wait_for(proc.wait(), timeout=child.stop_timeout)
            except TimeoutError:
                log.warning("child.kill", child=child.name, pid=proc.pid)
                # The child's group is its own (start_new_session: pgid == pid), never ours; and once
                # the child is reaped its pid may be another's, so only while it is still running.
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        status.state = State.STOPPED
        status.pid = None
        log.info("child.stopped", child=child.name, code=proc.returncode)

    async def stop(self) -> None:
        """Stop every child in reverse start order: polite signal first, SIGKILL after the timeout."""
        self._stopping = True
        for task in self._watchers.values():
            task.cancel()
        for task in self._watchers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watchers.clear()
        for child in reversed(self.children):
            await self._terminate(child)
        self._procs.clear()
