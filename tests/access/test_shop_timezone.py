"""SMART-ID counts days in the shop's time zone: an exam is current through the end of its due day there."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smart import ledger
from smart.access import Kind
from smart.hub.vault.smartid import SmartId, VaultError
from smart.keys import KeyStore
from smart.settings import Settings
from smart.testing.plugin import FreshDatabase
from tests.access.test_certification import certified, eyes, performed

CHICAGO = ZoneInfo("America/Chicago")  # UTC-6 in November
EXAM_DAY = date(2025, 11, 28)  # a 12-month near-vision exam: current through 2026-11-28, shop time


def _vault(database: FreshDatabase, node_log: ledger.NodeLog, keys: KeyStore, at: datetime) -> SmartId:
    smartid = SmartId(
        database.url, key=keys.signing_key("smart-id"), ledger=node_log, clock=lambda: at, zone=CHICAGO
    )
    if not smartid.people():
        smartid.add_person(
            employee_id="E-1001", name="Dana Inspector", badge_id="B-0042", roles=["operator"], actor="qm"
        )
        for record in [
            *certified("PT", "2", date(2023, 11, 1)),
            *eyes(EXAM_DAY),
            performed("PT", date(2026, 11, 20)),
        ]:
            smartid.add_record("E-1001", record, actor="level3-pt")
    return smartid


def test_certified_credential_is_issued_late_on_the_due_day_and_expires_at_its_end_in_shop_time(
    database: FreshDatabase, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys")
    with ledger.NodeLog.open(tmp_path / "ledger", node="smart-id", keys=keys) as node_log:
        # 21:00 in Chicago on the due day is already the next day in UTC.
        evening = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
        issued = _vault(database, node_log, keys, evening).issue(
            "E-1001", kind=Kind.CERTIFIED, scope={"method": "PT"}, actor="qm-alice"
        )
        assert issued.credential.expires_at == datetime(2026, 11, 29, 0, 0, tzinfo=CHICAGO)
        assert issued.credential.expires_at - evening == timedelta(hours=3)

        # 01:00 the next morning in Chicago: the exam is overdue and nothing is issued.
        next_morning = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
        with pytest.raises(VaultError, match="E-1001"):
            _vault(database, node_log, keys, next_morning).issue(
                "E-1001", kind=Kind.CERTIFIED, scope={"method": "PT"}, actor="qm-alice"
            )


def test_shop_time_zone_setting_must_be_a_real_zone(tmp_path: Path) -> None:
    assert Settings(state_dir=tmp_path, shop_timezone="America/Chicago").shop_zone == CHICAGO
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Settings(state_dir=tmp_path, shop_timezone="Mars/Olympus")
