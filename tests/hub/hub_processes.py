"""`smart hub run --role R` as a process of its own, for tests that run hub roles apart, and its wait.

A role's process is the honest picture of a pod: its own interpreter, settings from its environment
only, its log in a file the failure message quotes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from smart.testing.patience import STATE_DEADLINE_S


def start_hub(role: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "smart", "hub", "run", "--role", role], env=env, stdout=log, stderr=log
        )


def tail(log_path: Path) -> str:
    return log_path.read_text()[-4000:]


async def answering(base: str, path: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until ``base + path`` answers 200; the process dying first fails with its log's tail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STATE_DEADLINE_S
    async with httpx.AsyncClient(timeout=5) as client:
        while loop.time() < deadline:
            assert process.poll() is None, tail(log_path)
            try:
                if (await client.get(f"{base}{path}")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"{base}{path} never answered 200: {tail(log_path)}")
