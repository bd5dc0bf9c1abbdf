"""A cancelled C of C printer ends only after the pass it was running: its connection is closed next."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from smart.hub.audit import index, printing
from smart.hub.audit.service import AuditCentral
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.testing.patience import STATE_DEADLINE_S
from tests.hub.conftest import HubDatabase


def _printer_queries(conn: psycopg.Connection[tuple[Any, ...]], *, state: str) -> int:
    """The printer's queries (its own connection's and its index follower's) in ``state``:
    ``waiting`` on a lock, or ``active`` at all."""
    condition = "wait_event_type = 'Lock'" if state == "waiting" else "state = 'active'"
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        f" AND usename = %s AND {condition}",
        (hub_store.APP_ROLE,),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_printer_cancelled_mid_pass_returns_once_the_pass_is_over(
    hub_db: HubDatabase, tmp_path: Path
) -> None:
    index.migrate(hub_db.owner_url)
    keys = KeyStore(tmp_path / "keys")
    keys.signing_key("hub")
    central = AuditCentral(hub_db.app_url, log_key=keys.verifying_key("hub"))
    with psycopg.connect(hub_db.owner_url) as holder:
        # Another transaction holds the printer's table: its pass waits in the database.
        holder.execute("LOCK TABLE audit.refs IN ACCESS EXCLUSIVE MODE")
        task = asyncio.create_task(printing.CertificatePrinter(central, shop="Demo NDT").run(every_s=0.1))
        with psycopg.connect(hub_db.owner_url, autocommit=True) as watcher:
            deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
            while not _printer_queries(watcher, state="waiting"):
                assert asyncio.get_running_loop().time() < deadline, "the pass never reached the lock"
                await asyncio.sleep(0.05)
            task.cancel()
            for _ in range(10):
                await asyncio.sleep(0.02)
            assert _printer_queries(watcher, state="waiting") == 1  # the pass still runs
            assert not task.done()  # and the printer has not ended under it
            holder.commit()  # the lock goes: the pass ends
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, STATE_DEADLINE_S)
            assert _printer_queries(watcher, state="active") == 0  # none runs once its connection is closed
    central.close()
