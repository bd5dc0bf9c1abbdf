"""MaintenanceHub on a real database, credentials signed by a real issuer key, the assets tests use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nats.js import JetStreamContext

from smart.access import issuing, tokens
from smart.access.credential import Kind
from smart.access.verify import Verifier
from smart.hub.maintenance import schedule, signers
from smart.hub.maintenance import store as maintenance
from smart.hub.maintenance.models import CalibrationIn, EquipmentIn
from smart.hub.service_log import ServiceNodeLog
from smart.keys import KeyStore
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
