"""``smart hub run`` serves the hub from settings alone: real PostgreSQL and NATS, no embedded floor.

The hub is started as its own process with only ``SMART_*`` settings (database URL, NATS URL,
keys, state and contracts directories), from a working directory that holds nothing of the shop's:
it starts no server of its own, migrates its tables, reads MaintenanceHub's intervals from the
settings' contracts folder, serves its status and sign-in pages and takes a station's shipped
ledger into the global log.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg

from smart.keys import KeyStore
from smart.runtime import ports
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase, give_app_password
from tests.node.conftest import agent_for

DEADLINE_S = 240.0
REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _own_parts_healthy(status: dict[str, Any]) -> bool:
    own = [s for s in status.get("services", []) if s["kind"] in {"database", "hub-nats"}]
    return len(own) == 2 and all(s["healthy"] for s in own)


def start_hub(env: dict[str, str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "smart", "hub", "run"], env=env, stdout=log, stderr=log, cwd=cwd
        )


async def test_smart_hub_run_serves_the_hub_with_real_postgres_and_nats_and_no_floor(
    database: FreshDatabase, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    state, keys_dir, web_port = tmp_path / "hub-state", tmp_path / "keys", ports.free_port()
    env = {
        **os.environ,
        "SMART_STATE_DIR": str(state),
        "SMART_KEYS_DIR": str(keys_dir),
        "SMART_DATABASE_URL": database.url,
        "SMART_NATS_URL": nats_floor.hub_url,
        "SMART_WEB_PORT": str(web_port),
        "SMART_STATIONS": "3",
        "SMART_CONTRACTS_DIR": str(REPO_CONTRACTS),
    }
    give_app_password(database.server, state / "secrets")  # the server's one app role password
    elsewhere = tmp_path / "elsewhere"  # no contracts/ here: the setting, not the directory, decides
    elsewhere.mkdir()
    hub = start_hub(env, tmp_path / "hub.log", cwd=elsewhere)
    agent = agent_for(nats_floor, "pt-1", KeyStore(keys_dir), tmp_path / "stations")
    try:
        base = f"http://127.0.0.1:{web_port}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        status: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            while loop.time() < deadline:
                assert hub.poll() is None, (tmp_path / "hub.log").read_text()
                try:
                    status = (await client.get(f"{base}/api/status")).json()
                except httpx.HTTPError:
                    status = {}
                if _own_parts_healthy(status):
                    break
                await asyncio.sleep(0.5)
            assert _own_parts_healthy(status), status
            # Every station the hub serves is listed, heard from or not (none is yet): not healthy.
            rows = {s["station"]: s for s in status["services"] if s["kind"] == "station-agent"}
            assert sorted(rows) == ["mt-1", "pt-1", "ut-1"], status
            assert rows["ut-1"]["detail"] == "no heartbeat from the station yet"
            assert not status["healthy"]
            assert (await client.get(f"{base}/login")).status_code == 200  # SMART-ID's sign-in page
        said = (tmp_path / "hub.log").read_text()
        loaded = re.search(r"maintenance_hub\.schedule_loaded.*?contracts=(\d+)", said)
        assert loaded and int(loaded.group(1)) >= 6 and str(REPO_CONTRACTS) in said, said[-3000:]
        assert "maintenance_hub.no_contracts_folder" not in said
        assert not (state / "postgres").exists() and not (state / "nats").exists()  # no floor of its own

        await agent.start()  # a station ships its ledger; the hub's intake takes it
        agent.record(kind="station.note", subject="pt-1", data={"note": "hub run"}, actor="pt-1")
        assert agent.ledger is not None
        size = agent.ledger.size()
        shipped = 0
        while loop.time() < deadline and shipped < size:
            with psycopg.connect(database.url) as connection:
                row = connection.execute("SELECT count(*) FROM ledger_entries WHERE node = 'pt-1'").fetchone()
            shipped = int(row[0]) if row else 0
            await asyncio.sleep(0.5)
        assert shipped >= size, f"{shipped} of {size} pt-1 entries reached the hub"
        async with httpx.AsyncClient(timeout=5) as client:  # and pt-1's row now says it is heard
            heard: dict[str, Any] = {}
            while loop.time() < deadline and not heard.get("online"):
                status = (await client.get(f"{base}/api/status")).json()
                heard = next(s for s in status["services"] if s.get("station") == "pt-1")
                await asyncio.sleep(0.5)
            assert heard["online"] and heard["healthy"], heard
            assert heard["ledger_lag"] is not None, heard
    finally:
        await agent.stop()
        hub.terminate()
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()
    assert hub.returncode == 0, (tmp_path / "hub.log").read_text()
