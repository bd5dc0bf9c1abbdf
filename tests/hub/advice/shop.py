"""A shop's history for AI Central, built once: real signed station entries in the hub log, real hub records.

Two stations tell opposite stories so each kind of finding has its positive and its negative on
the same data: pt-1 refuses more this week, mostly by one rule, its UV-A lamp is dying and its
UV-A check is done later each day; mt-1 refuses as often as last week, by different rules, its
readings are steady and its check is done at the same time each morning. pt-1's light meter is
due for calibration in 10 days, mt-1's in 200. SMART-ID holds the demo shop's people.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.conninfo import make_conninfo

from smart import ledger
from smart.hub.advice import service
from smart.hub.advice.central import AiCentral
from smart.hub.gathering import HubNodeGathering
from smart.hub.maintenance import schedule
from smart.hub.maintenance import store as maintenance
from smart.hub.service_log import ServiceNodeLog
from smart.hub.vault.service import SharedNodeLog
from smart.hub.vault.smartid import SmartId
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import fresh_database
from tests.hub.maintenance.shop import REPO, certificate, meter, trusted

UTC_ZONE = ZoneInfo("UTC")
#: The analysis' "now": noon today, so the history below lies in the past of the real clock too.
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

#: pt-1's UV-A readings: ten steady mornings (the baseline), then four falling past 3σ.
PT_UVA = [1200, 1205, 1195, 1202, 1198, 1201, 1199, 1203, 1197, 1200, 1190, 1185, 1180, 1172]
#: mt-1's: steady, alternating about the centre (no Western Electric pattern).
MT_UVA = [1200, 1204, 1196, 1203, 1197, 1202, 1198, 1201, 1199, 1203, 1198, 1202, 1197, 1201]
#: mt-1's ambient white light: steady, then six readings rising, still inside its control limits.
MT_LIGHT = [1.0, 1.4, 1.0, 1.4, 1.0, 1.4, 1.0, 1.4, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25]
#: When the first UV-A check was done on each of the last four days (minutes after 06:00).
PT_LATER = [10, 40, 75, 110]
MT_SAME = [5, 2, 7, 1]


@dataclass
class AdviceShop:
    owner_url: str
    app_url: str
    keys: KeyStore
    ledger_dir: Path
    hub_log: hub_store.HubLog
    #: MaintenanceHub over the same database (its pages are where equipment evidence links).
    equipment: maintenance.MaintenanceHub
    #: The app role's password, as the hub keeps it in its secrets directory.
    app_password: str

    def central(self, *, now: datetime = NOW, people: bool = True) -> AiCentral:
        made = service.central(
            self.app_url,
            ledger_dir=self.ledger_dir,
            keys=self.keys,
            zone=UTC_ZONE,
            vault_url=self.owner_url if people else None,
        )
        made.clock = lambda: now
        return made

    def gather(self) -> None:
        HubNodeGathering(self.ledger_dir, self.hub_log, self.keys).gather_once()

    def hub_entries(self, kind: str) -> list[ledger.Entry]:
        return [e for e in self.hub_log.entries(0) if e.kind == kind]


def decision(at: datetime, refused: bool, rule: str, part: str = "BRK-220") -> dict[str, Any]:
    """A ``gate.decision`` as a station records it (the enforcer's decision and the event judged)."""
    return {
        "action": "operate",
        "station": "?",
        "outcome": "deny" if refused else "allow",
        "revisions": {"penetrant": "r1"},
        "reasons": [{"rule": rule, "message": f"{rule} refused", "severity": "deny"}] if refused else [],
        "event": {"action": "operate", "at": at.isoformat(), "attributes": {"part": part}},
    }


def check(at: datetime, value: float, light: float | None = None) -> dict[str, Any]:
    """A ``record.check`` of the daily UV-A check with its readings, as the Maintenance module records it."""
    readings: dict[str, Any] = {"uv-a-intensity": {"value": value, "unit": "µW/cm²"}}
    if light is not None:
        readings["ambient-white-light"] = {"value": light, "unit": "fc"}
    return {
        "kind": "check",
        "value": {
            "check": "uv-a-intensity",
            "at": at.isoformat(),
            "passed": True,
            "equipment": "UV-METER-1",
            "readings": readings,
        },
    }


def _history(
    log: ledger.NodeLog,
    *,
    rejects_before: list[str],
    rejects_now: list[str],
    uva: Sequence[float],
    late: Sequence[int],
    light: Sequence[float] | None = None,
) -> None:
    week_before, this_week = NOW - timedelta(days=13), NOW - timedelta(days=6)
    for window_start, rules in ((week_before, rejects_before), (this_week, rejects_now)):
        for n in range(10):
            at = window_start + timedelta(hours=12 * n)
            rule = rules[n] if n < len(rules) else ""
            log.append(
                kind="gate.decision", subject=f"J-{n}", data=decision(at, bool(rule), rule), actor="op-7"
            )
    days = len(uva)
    for n, value in enumerate(uva):
        day = (NOW - timedelta(days=days - n)).replace(hour=6, minute=0)
        minutes = late[n - (days - len(late))] if n >= days - len(late) else 0
        log.append(
            kind="record.check",
            subject="uv-a-intensity",
            data=check(day + timedelta(minutes=minutes), value, light[n] if light else None),
            actor="op-7",
        )
    log.sign_head()


def make(postgres: BackgroundFloor, root: Path) -> Iterator[AdviceShop]:
    with fresh_database(postgres) as fresh:
        owner_url, password = fresh.url, fresh.app_password
        hub_store.migrate(owner_url, app_password=password)
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        keys = KeyStore(root / "keys")
        ledger_dir = root / "ledger"
        with ledger.NodeLog.open(ledger_dir, node="pt-1", keys=keys) as pt:
            # this week 5 of 10 refused, 4 by one rule; the week before 1 of 10
            _history(
                pt,
                rejects_before=["pt-uva-intensity"],
                rejects_now=[
                    "pt-near-vision",
                    "pt-near-vision",
                    "pt-lot-expired",
                    "pt-near-vision",
                    "pt-near-vision",
                ],
                uva=PT_UVA,
                late=PT_LATER,
            )
        with ledger.NodeLog.open(ledger_dir, node="mt-1", keys=keys) as mt:
            # 3 of 10 both weeks, three different rules this week
            _history(
                mt,
                rejects_before=["mt-a", "mt-b", "mt-c"],
                rejects_now=["mt-field", "mt-bath", "mt-light"],
                uva=MT_UVA,
                late=MT_SAME,
                light=MT_LIGHT,
            )
        hub_log = hub_store.HubLog.connect(
            app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
        )
        # MaintenanceHub's register, through its store: pt-1's meter due in 10 days, mt-1's in 200.
        maintenance.migrate(owner_url)
        equipment = maintenance.MaintenanceHub(
            app_url,
            ledger=ServiceNodeLog(ledger_dir, keys, node=maintenance.NODE),
            schedule=schedule.Schedule.load(REPO / "contracts"),
            stations=("pt-1", "mt-1"),
            js=None,
            verifiers=trusted(keys),
        )
        for asset, station, days in (("UV-METER-1", "pt-1", 10), ("UV-METER-2", "mt-1", 200)):
            equipment.register(meter(asset, station), actor="qm-anna")
            equipment.record_calibration(
                asset,
                certificate(NOW - timedelta(days=30), next_due=(NOW + timedelta(days=days)).date()),
                actor="qm-anna",
            )
        # SMART-ID's people, with their records and current credentials (the demo shop's).
        smartid = SmartId(owner_url, key=keys.signing_key("smart-id"), ledger=SharedNodeLog(ledger_dir, keys))
        demo_shop.enrol(smartid, NOW)
        shop = AdviceShop(owner_url, app_url, keys, ledger_dir, hub_log, equipment, password)
        shop.gather()
        try:
            yield shop
        finally:
            equipment.close()
            hub_log.close()
