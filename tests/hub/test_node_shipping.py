"""On Kubernetes the Vault's node logs reach the Floor's hub log: shipped, as a station ships its own.

Two ``smart hub run`` processes, Vault and Floor, each with a state directory of its own (as their
pods' volumes are), signed in to a real hub NATS as their own users, on a real PostgreSQL. The
Floor cannot read the Vault's files, so its gathering never sees them; the Vault ships each of its
nodes (``hub_roles.LEDGER_NODES``) to ``ledger.<node>.batch`` and the Floor's intake takes them,
checked against the node's key the administrator provisioned. An entry SMART-ID writes on the
Vault's volume then stands in the Floor's hub log, and its proof bundle verifies offline against
the hub's key.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from smart import ledger
from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.contracts import approval
from smart.hub.vault import service as vault
from smart.hub.vault.smartid import SmartId
from smart.keys import KeyStore
from smart.ledger import bundle, hub_store
from smart.ledger.trust import Trust
from smart.runtime import demo_shop, ports
from smart.runtime.background import BackgroundFloor
from smart.secret_files import secret
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FreshDatabase
from tests.hub.hub_processes import answering, start_hub


def _written(path: Path) -> list[ledger.Entry]:
    with ledger.NodeLogReader(path) as reader:
        return reader.entries(0, 2**62)


def _smart_id_entries(app_url: str) -> list[tuple[int, bytes]]:
    with psycopg.connect(app_url) as conn:
        rows = conn.execute("SELECT idx, entry FROM ledger_entries ORDER BY idx").fetchall()
    found = []
    for idx, raw in rows:
        if b'"node":"smart-id"' in bytes(raw):
            found.append((int(idx), bytes(raw)))
    return found


async def test_an_entry_smart_id_writes_on_the_vaults_volume_stands_verifiable_in_the_floors_hub_log(
    nats_floor: BackgroundFloor, database: FreshDatabase, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"  # the keys Secret both pods mount: the Vault's node keys with it
    keys = KeyStore(keys_dir)
    for name in ("hub", approval.SMART_ID_KEY, "smart-id-ledger", "ledger-admin"):
        keys.signing_key(name)
    secrets = nats_floor.settings.secrets_directory  # the per-role NATS passwords the floor made
    app_password = secret(secrets / "ledger-app.password")
    hub_store.migrate(database.url, app_password=app_password)
    hubs = nats_floor.floor.hub
    assert hubs is not None
    web = {"vault": ports.free_port(), "floor": ports.free_port()}
    env = {
        **os.environ,
        "SMART_KEYS_DIR": str(keys_dir),
        "SMART_SECRETS_DIR": str(secrets),
        "SMART_DATABASE_URL": database.url,
        "SMART_NATS_URL": hubs.url,  # the bare address: each role signs in as its own user
        "SMART_STATIONS": "1",
    }
    states = {role: tmp_path / role for role in web}
    processes = {
        role: start_hub(
            role,
            {**env, "SMART_STATE_DIR": str(states[role]), "SMART_WEB_PORT": str(port)},
            tmp_path / f"{role}.log",
        )
        for role, port in web.items()
    }
    try:
        for role, port in web.items():
            await answering(f"http://127.0.0.1:{port}", "/healthz", processes[role], tmp_path / f"{role}.log")
        # SMART-ID enrols the shop's people on the Vault's volume, as the Vault's pages would.
        smartid = SmartId(
            database.url,
            key=keys.signing_key(approval.SMART_ID_KEY),
            ledger=vault.SharedNodeLog(states["vault"] / "ledger", keys),
            migrate=False,
        )
        demo_shop.enrol(smartid, datetime.now(UTC))
        written = states["vault"] / "ledger" / "smart-id.sqlite3"
        assert not (states["floor"] / "ledger" / "smart-id.sqlite3").exists()  # nothing to gather there
        app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=app_password)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STATE_DEADLINE_S
        shipped: list[tuple[int, bytes]] = []
        while loop.time() < deadline:
            for process in processes.values():
                assert process.poll() is None
            shipped = await asyncio.to_thread(_smart_id_entries, app_url)
            if shipped and len(shipped) >= len(_written(written)):
                break
            await asyncio.sleep(0.5)
        ours = _written(written)
        assert ours, "SMART-ID wrote nothing"
        assert [raw for _, raw in shipped] == [entry.raw for entry in ours]  # every entry, once, in order
        assert "hub node shipping" in (tmp_path / "vault.log").read_text()
        # Verifiable: the last one's proof bundle, against the hub's key, offline.
        last, _ = shipped[-1]
        with hub_store.HubLog.connect(app_url, key=keys.signing_key("hub")) as hub_log:
            deadline = loop.time() + STATE_DEADLINE_S
            while hub_log.checkpoint().checkpoint.size <= last and loop.time() < deadline:
                await asyncio.sleep(0.5)
            proof = hub_log.proof_bundle(last)
        verified = bundle.verify(proof.to_bytes(), Trust(log=keys.signing_key("hub").verifying))
        assert verified.entry.raw == ours[-1].raw
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert set(p.stem for p in (states["vault"] / "ledger").glob("*.sqlite3")) <= set(
        hub_roles.LEDGER_NODES[HubRole.VAULT]
    ), "a Vault node the list does not name would never reach the hub log"
