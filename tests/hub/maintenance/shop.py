"""MaintenanceHub on a real database, credentials signed by a real issuer key, the assets tests use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext

from smart import ledger
from smart.access import issuing, tokens
from smart.access.credential import Kind
from smart.access.verify import Verifier
from smart.hub.gathering import HubNodeGathering
from smart.hub.maintenance import schedule, signers
from smart.hub.maintenance import store as maintenance
from smart.hub.maintenance.models import CalibrationIn, EquipmentIn
from smart.hub.service_log import ServiceNodeLog
from smart.keys import KeyStore
from smart.ledger import hub_store
from tests.hub.conftest import HubDatabase

REPO = Path(__file__).resolve().parents[3]
STATIONS = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")
ISSUER = "smart-id"


@dataclass
class Maintenance:
    hub: maintenance.MaintenanceHub
    keys: KeyStore
    ledger: ServiceNodeLog

    def credential(self, badge: str, kind: Kind, **scope: str) -> str:
        """A credential SMART-ID would issue ``badge`` (signed by the issuer key the hub trusts)."""
        key = self.keys.signing_key(ISSUER)
        now = datetime.now(UTC)
        issued = issuing.new_credential(
            subject=badge,
            kind=kind,
            scope=scope,
            now=now - timedelta(minutes=5),
            expires_at=now + timedelta(days=30),
            issuer_key_id=key.key_id,
        )
        return tokens.sign(issued, key)


def trusted(keys: KeyStore) -> signers.VerifierSource:
    """The issuer's published key, as the hub reads it from ``access-keys``."""
    public = keys.signing_key(ISSUER).verifying

    async def current() -> Verifier:
        return Verifier(keys={public.key_id: public}, revocations={})

    return current


def make(
    db: HubDatabase, tmp_path: Path, js: JetStreamContext | None = None, keys: KeyStore | None = None
) -> Maintenance:
    maintenance.migrate(db.owner_url)
    keys = keys or KeyStore(tmp_path / "keys")
    ledger = ServiceNodeLog(tmp_path / "ledger", keys, node=maintenance.NODE)
    hub = maintenance.MaintenanceHub(
        db.app_url,
        ledger=ledger,
        schedule=schedule.Schedule.load(REPO / "contracts"),
        stations=STATIONS,
        js=js,
        verifiers=trusted(keys),
    )
    return Maintenance(hub, keys, ledger)


def meter(asset_id: str = "UV-METER-1", station: str = "pt-1") -> EquipmentIn:
    return EquipmentIn(asset_id=asset_id, kind="light-meter", station=station, serial=f"SN-{asset_id}")


def furnace(**changes: object) -> EquipmentIn:
    values: dict[str, object] = {
        "asset_id": "FURNACE-2",
        "kind": "furnace",
        "station": "ht-1",
        "serial": "F-2-1998",
        "furnace_class": "2",
        "instrumentation": "B",
        "furnace_type": "air",
        "qualified_ranges": [{"min": 400, "max": 1100, "unit": "°C"}],
    }
    values.update(changes)
    return EquipmentIn.model_validate(values)


def certificate(at: datetime, *, in_tolerance: bool = True, **changes: object) -> CalibrationIn:
    values: dict[str, object] = {
        "calibrated_at": at,
        "lab": "Metrology Lab (ISO/IEC 17025)",
        "certificate_number": f"CAL-{at:%Y%m%d}",
        "traceability": "NIST report 685/312345-24",
        "as_found": "1002 µW/cm² vs 1000 reference",
        "as_left": "1000 µW/cm²",
        "in_tolerance": in_tolerance,
    }
    values.update(changes)
    return CalibrationIn.model_validate(values)


def decision(job: str, equipment: list[str], at: datetime, outcome: str = "allow") -> dict[str, Any]:
    """A ``module.decision`` entry's data as a station records it, naming the event's equipment."""
    return {
        "verb": "start",
        "module": "maintenance",
        "outcome": outcome,
        "event": {
            "action": "operate",
            "at": at.isoformat(),
            "station": "pt-1",
            "job": job,
            "equipment": equipment,
        },
        "reasons": [],
        "revisions": {},
        "effects": {},
    }


def served(
    shop: Maintenance, db: HubDatabase, stations: Path, uses: list[tuple[str, list[str], datetime, str]]
) -> None:
    """pt-1's decisions (job, equipment, when, outcome), signed on its node log, gathered into the hub log."""
    with ledger.NodeLog.open(stations, node="pt-1", keys=shop.keys) as pt:
        for job, equipment, at, outcome in uses:
            pt.append(
                kind="module.decision", subject=job, data=decision(job, equipment, at, outcome), actor="op-7"
            )
        pt.sign_head()
    with hub_store.HubLog.connect(db.app_url, key=shop.keys.signing_key("hub")) as hub_log:
        HubNodeGathering(stations, hub_log, shop.keys).gather_once()
