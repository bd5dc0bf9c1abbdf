"""A hung test in an xdist worker says where it hung before pytest-timeout ends the worker.

pytest-timeout's thread method writes its stack dump to the terminal, which in an xdist worker is
execnet's /dev/null, then ``os._exit``s the worker: the run shows only "node down: Not properly
terminated", no traceback (what a suite run under ``stress-ng`` once showed). pytest's own
faulthandler, set to fire first (``faulthandler_timeout`` below ``timeout`` in ``pyproject.toml``),
writes every thread's stack to the worker's real stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smart.testing.patience import STATE_DEADLINE_S

HUNG = """
import threading


def _waiting_for_what_never_comes():
    threading.Event().wait()


def test_hangs():
    _waiting_for_what_never_comes()
"""


def _environment() -> dict[str, str]:
    """This worker's environment without its xdist and pytest variables; only the two plugins in question."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def test_the_suites_stack_dump_comes_before_its_timeout(pytestconfig: pytest.Config) -> None:
    dump_after = float(pytestconfig.getini("faulthandler_timeout") or 0)
    killed_after = float(pytestconfig.getini("timeout"))
    assert 0 < dump_after < killed_after, (dump_after, killed_after)


def test_a_hung_test_in_an_xdist_worker_shows_its_stack_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntimeout = 5\ntimeout_method = thread\nfaulthandler_timeout = 1\n"
    )
    (tmp_path / "test_hung.py").write_text(HUNG)
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-p", "pytest_timeout", "-n", "1", "-q"],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=STATE_DEADLINE_S,
    )
    assert ran.returncode != 0
    assert "worker 'gw0' crashed while running 'test_hung.py::test_hangs'" in ran.stdout, ran.stdout
    # where it hung, named by the faulthandler's dump on the worker's stderr
    assert "in _waiting_for_what_never_comes" in ran.stderr, ran.stderr
