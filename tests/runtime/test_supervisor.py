"""The supervisor keeps the floor's servers running: restart with backoff, stop in reverse order."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from smart.runtime.supervisor import ChildSpec, Health, StartError, State, Supervisor
from smart.testing.patience import STATE_DEADLINE_S


def _child(name: str, tmp_path: Path, script: str, *, healthy: bool = True) -> ChildSpec:
    async def health() -> Health:
        return Health(healthy, "" if healthy else "never answers")

    return ChildSpec(
        name=name,
        argv=[sys.executable, "-c", script],
        health=health,
        log_path=tmp_path / f"{name}.log",
        start_timeout=1.0,
        stop_timeout=2.0,
    )


async def test_crashed_child_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    script = f"import time; open({str(marker)!r}, 'a').write('x'); time.sleep(0.1)"
    supervisor = Supervisor([_child("flaky", tmp_path, script)], backoff_initial=0.1, backoff_max=0.4)
    await supervisor.start()
    started = time.monotonic()
    while supervisor.status["flaky"].restarts < 3 and time.monotonic() - started < 10:
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - started
    await supervisor.stop()
    assert supervisor.status["flaky"].restarts >= 3
    # Three restarts after exits: waits of 0.1 + 0.2 + 0.4 s (the backoff doubles, capped).
    assert elapsed >= 0.7
    assert len(marker.read_text()) >= 3  # the process really ran again each time
    assert supervisor.status["flaky"].state is State.STOPPED


async def test_child_that_never_gets_healthy_fails_the_start_and_nothing_keeps_running(
    tmp_path: Path,
) -> None:
    first = _child("first", tmp_path, "import time; time.sleep(60)")
    stuck = _child(
        "stuck", tmp_path, "import time; print('warming up', flush=True); time.sleep(60)", healthy=False
    )
    supervisor = Supervisor([first, stuck])
    with pytest.raises(StartError, match=r"stuck was not healthy within 1 s \(never answers\)") as raised:
        await supervisor.start()
    assert "warming up" in str(raised.value)  # the error quotes the child's log
    assert supervisor.status["first"].state is State.STOPPED
    assert supervisor.pid("first") is None


async def test_children_stop_in_reverse_order_of_start(tmp_path: Path) -> None:
    order = tmp_path / "order"
    script = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(order)!r}, 'a').write(sys.argv[1] + ' ')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "time.sleep(60)\n"
    )
    children = []
    for name in ("database", "hub", "leaf"):
        child = _child(name, tmp_path, script)
        child.argv.append(name)
        children.append(child)
    supervisor = Supervisor(children)
    await supervisor.start()
    await asyncio.sleep(0.2)  # let each child install its handler
    await supervisor.stop()
    assert order.read_text().split() == ["leaf", "hub", "database"]


async def test_a_child_deaf_to_sigterm_is_killed_with_its_own_group_which_is_never_the_tests(
    tmp_path: Path,
) -> None:
    """The SIGKILL after the stop timeout goes to the child's process group: its own session's, so
    a server's helpers (PostgreSQL's backends) go with it and the process running the floor (a
    pytest worker, ``smart up``) is never in it."""
    pids = tmp_path / "pids"
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    script = (
        "import os, subprocess, sys\n"
        f"helper = subprocess.Popen([sys.executable, '-c', {deaf!r}])\n"
        f"open({str(pids)!r} + '.tmp', 'w').write(f'{{os.getpid()}} {{helper.pid}}')\n"
        f"os.rename({str(pids)!r} + '.tmp', {str(pids)!r})\n"
        f"exec({deaf!r})\n"
    )
    supervisor = Supervisor([_child("deaf", tmp_path, script)])
    await supervisor.start()
    deadline = time.monotonic() + STATE_DEADLINE_S
    while not pids.exists():
        assert time.monotonic() < deadline, "the child never wrote its pids"
        await asyncio.sleep(0.05)
    child, helper = (int(pid) for pid in pids.read_text().split())
    assert os.getsid(child) == child == os.getpgid(child) != os.getpgrp()
    assert os.getpgid(helper) == child  # the helper is in the child's group, not ours
    await supervisor.stop()  # SIGTERM ignored, then SIGKILL to the group after the 2 s stop timeout
    assert supervisor.status["deaf"].state is State.STOPPED
    while _running(helper):
        assert time.monotonic() < deadline, "the child's helper outlived the group kill"
        await asyncio.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
