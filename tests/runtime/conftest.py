"""Running ``smart up`` as a user would: a real process, real ports, a real state directory."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from smart.settings import Settings
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import make_settings

SMART = str(Path(sys.executable).parent / "smart")


def floor_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``smart up`` use these settings' ports."""
    env = dict(os.environ)
    env.update(settings.environment())
    env["SMART_SETTINGS_FILE"] = "/nonexistent/smart.toml"
    return env


@dataclass
class RunningFloor:
    """A ``smart up`` process and what it printed."""

    process: subprocess.Popen[str]
    settings: Settings
    urls: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    @property
    def status_url(self) -> str:
        return self.urls["hub status page"]

    def api_status(self) -> dict[str, object]:
        response = httpx.get(self.urls["hub status API"], timeout=STATE_DEADLINE_S)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self, stop_signal: int = signal.SIGINT, timeout: float = STATE_DEADLINE_S) -> int:
        self.process.send_signal(stop_signal)
        return self.process.wait(timeout)


#: How many times ``start_up`` picks fresh ports when another process took one meanwhile.
PORT_RETRIES = 5


def repick_ports(settings: Settings) -> None:
    """Give ``settings`` fresh free ports (in place: the test goes on reading the same settings)."""
    fresh = make_settings(settings.state_dir, stations=settings.stations)
    for name in (
        "web_port",
        "postgres_port",
        "nats_port",
        "nats_leaf_port",
        "nats_monitor_port",
        "station_nats_port_base",
        "station_monitor_port_base",
        "station_web_port_base",
    ):
        setattr(settings, name, getattr(fresh, name))


def start_up(settings: Settings, *args: str, deadline_s: float = STATE_DEADLINE_S) -> RunningFloor:
    """Start ``smart up`` and wait until it prints its URLs (or fail with what it printed).

    Ports are picked free a moment before; on a machine shared with other test runs, another process
    may take one meanwhile, and ``smart up`` then refuses to start, naming it: that start is tried
    again on fresh ports (it started nothing), a few times.
    """
    for _ in range(PORT_RETRIES):
        floor = _start_once(settings, args, deadline_s)
        if "hub status page" in floor.urls:
            return floor
        floor.process.kill()
        floor.process.wait()
        if not any("is already in use" in line for line in floor.output):
            break
        repick_ports(settings)
    pytest.fail("smart up did not print its URLs:\n" + "\n".join(floor.output))


def _start_once(settings: Settings, args: tuple[str, ...], deadline_s: float) -> RunningFloor:
    process = subprocess.Popen(
        [SMART, "up", "--state-dir", str(settings.state_dir), *args],
        env=floor_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    floor = RunningFloor(process, settings)
    started = time.monotonic()
    assert process.stdout is not None and process.stderr is not None
    # The logs (stderr) are read apart from what `smart up` prints (stdout): merged into one pipe, a
    # log line written mid-way through the URL table landed inside one of its lines.
    logs = process.stderr
    reader = threading.Thread(
        target=lambda: floor.output.extend(line.rstrip("\n") for line in logs), daemon=True
    )
    reader.start()
    ended = True
    for line in process.stdout:
        floor.output.append(line.rstrip("\n"))
        match = re.match(r"^\s{2}(.+?)\s{2,}(\S+://\S+)$", line.rstrip("\n"))
        if match:
            floor.urls[match.group(1).strip()] = match.group(2)
        if "Press Ctrl-C to stop." in line or time.monotonic() - started > deadline_s:
            ended = False
            break
    if ended:  # it stopped (a taken port, a refusal): everything it logged is read before judging
        reader.join(timeout=deadline_s)
    return floor


@pytest.fixture
def up_settings(state_root: Path) -> Settings:
    return make_settings(state_root / "state", stations=6)


def stop(floor: RunningFloor) -> None:
    """Interrupt ``floor`` if it still runs (then kill it, past the deadline)."""
    if floor.process.poll() is None:
        try:
            floor.interrupt(timeout=STATE_DEADLINE_S)
        except subprocess.TimeoutExpired:
            floor.process.kill()


@pytest.fixture
def running_floors() -> Iterator[list[RunningFloor]]:
    """Floors a test started; any still running at the end are interrupted (then killed)."""
    floors: list[RunningFloor] = []
    yield floors
    for floor in floors:
        stop(floor)


@contextlib.contextmanager
def fresh_state_root() -> Iterator[Path]:
    """A temporary directory for a floor shared by several tests (``state_root`` is one test's).

    Not under pytest's tmp_path, for the reason ``smart.testing.plugin`` gives: the smart-postgres
    user must be able to traverse to its data.
    """
    root = Path(tempfile.mkdtemp(prefix="smart-test-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class DemoFloor:
    """``smart up --demo-shop`` of six stations, started while another process held its web port."""

    floor: RunningFloor
    taken_web_port: int


@pytest.fixture(scope="package")
def demo_floor() -> Iterator[DemoFloor]:
    """One demo shop for the tests that read what it loaded (its PO, people, procedure, lot, equipment)."""
    with fresh_state_root() as root:
        settings = make_settings(root / "state", stations=6)
        taken = settings.web_port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:  # another run took the port
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((settings.host, taken))
            squatter.listen()
            floor = start_up(settings, "--demo-shop")  # tried again on fresh ports
        try:
            yield DemoFloor(floor, taken)
        finally:
            stop(floor)
