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


def _waiting_on_a_lock(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """The printer's queries (its own connection's and its index follower's) waiting on a lock."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND usename = %s AND wait_event_type = 'Lock'",
        (hub_store.APP_ROLE,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _running(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND usename = %s AND state = 'active'",
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
            while not _waiting_on_a_lock(watcher):
                assert asyncio.get_running_loop().time() < deadline, "the pass never reached the lock"
                await asyncio.sleep(0.05)
            task.cancel()
            for _ in range(10):
                await asyncio.sleep(0.02)
            assert _waiting_on_a_lock(watcher) == 1  # the pass still runs
            assert not task.done()  # and the printer has not ended under it
            holder.commit()  # the lock goes: the pass ends
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, STATE_DEADLINE_S)
            assert _running(watcher) == 0  # nothing of the printer's runs when its connection is closed
    central.close()
