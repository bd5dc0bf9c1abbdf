"""The work services on a real database (and NATS where a release needs one): fixtures and a sample order.

Import the fixtures into a test module (``from tests.hub.shop import work  # noqa: F401``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from smart.hub.clients import store as clients_store
from smart.hub.clients.models import ClientIn, FlowdownIn, LineIn, PurchaseOrderIn
from smart.hub.projects import store as projects_store
from smart.hub.release import store as release_store
from smart.hub.service_log import CLIENT_MANAGER, HANDOFF_CENTRAL, TRAVELERS, ServiceNodeLog
from smart.hub.travelers import store as travelers_store
from smart.hub.travelers.models import OperationIn, ProcedureIn, TravelerIn
from smart.keys import KeyStore
from tests.hub.conftest import HubDatabase

STATIONS = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")
QM = "qm-anna"  # a quality manager's login


@dataclass
class Work:
    db: HubDatabase
    clients: clients_store.ClientManager
    travelers: travelers_store.Travelers
    keys: KeyStore
    ledger_dir: Path
    closing: list[Callable[[], None]] = field(default_factory=list)

    def node(self, name: str) -> ServiceNodeLog:
        return ServiceNodeLog(self.ledger_dir, self.keys, node=name)


@pytest.fixture
def work(hub_db: HubDatabase, tmp_path: Path) -> Iterator[Work]:
    clients_store.migrate(hub_db.owner_url)
    travelers_store.migrate(hub_db.owner_url)
    release_store.migrate(hub_db.owner_url)
    projects_store.migrate(hub_db.owner_url)
    keys = KeyStore(tmp_path / "keys")
    ledger_dir = tmp_path / "ledger"
    clients = clients_store.ClientManager(
        hub_db.app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=CLIENT_MANAGER)
    )
    travelers = travelers_store.Travelers(
        hub_db.app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=TRAVELERS), stations=STATIONS
    )
    work = Work(hub_db, clients, travelers, keys, ledger_dir)
    try:
        yield work
    finally:
        for close in work.closing:
            close()
        clients.close()
        travelers.close()


def handoff_ledger(work: Work) -> ServiceNodeLog:
    return work.node(HANDOFF_CENTRAL)


def client() -> ClientIn:
    return ClientIn(
        code="AEROSPAR",
        name="Aerospar Structures",
        retention="10 years after final payment",
        nadcap_required=True,
        quality_clauses=("QC-7 first article", "QC-12 flowdown of special processes"),
    )


def flowdown(**changes: Any) -> FlowdownIn:
    values: dict[str, Any] = {
        "spec": "ASTM E1417-21",
        "spec_revision": "21",
        "class": "Type-I-Method-A-Level-3",
        "acceptance_criteria": "no linear indication over 1/16 in",
        "nadcap_required": True,
    }
    values.update(changes)
    return FlowdownIn.model_validate(values)


def line(number: str = "1", **changes: Any) -> LineIn:
    values: dict[str, Any] = {
        "line": number,
        "part": "BRK-220",
        "part_revision": "C",
        "quantity": 2,
        "serials": ("SN-001", "SN-002"),
        "unit_price": Decimal("42.50"),
        "due_date": date(2026, 12, 18),
        "flowdowns": (flowdown(),),
    }
    values.update(changes)
    return LineIn.model_validate(values)


def order(po: str = "PO-4411", *lines: LineIn) -> PurchaseOrderIn:
    return PurchaseOrderIn(po=po, client="AEROSPAR", received_on=date(2026, 12, 1), lines=lines or (line(),))


PROCEDURES = (
    ProcedureIn(id="PT-PROC-12", revision="D", method="PT", approved_by="l3-1", validated=True),
    ProcedureIn(id="SR-PROC-3", revision="B", method="SR", approved_by="l3-1", validated=True),
)


def operation(station: str, process: str, procedure: str, revision: str) -> OperationIn:
    return OperationIn.model_validate(
        {
            "station": station,
            "process": process,
            "procedure": procedure,
            "procedure_revision": revision,
            "spec": "ASTM E1417-21",
            "class": "Type-I-Method-A-Level-3",
            "acceptance_criteria": "no linear indication over 1/16 in",
        }
    )


def route_pt_to_sr() -> TravelerIn:
    return TravelerIn(
        operations=(
            operation("sr-1", "shipping", "SR-PROC-3", "B"),
            operation("pt-1", "penetrant", "PT-PROC-12", "D"),
        )
    )


def entered(work: Work, *, reviewed: bool = True, routed: bool = True) -> None:
    """A client, PO-4411 line 1 with its flowdown, the approved procedures; reviewed and routed by default."""
    from smart.hub.clients.models import Outcome, ReviewIn

    work.clients.add_client(client(), actor=QM)
    work.clients.add_po(order(), actor=QM)
    for procedure in PROCEDURES:
        work.travelers.approve_procedure(procedure, actor="l3-1")
    if routed:
        work.travelers.save("PO-4411", "1", route_pt_to_sr(), actor="l3-1")
    if reviewed:
        work.clients.review(
            "PO-4411", "1", ReviewIn(outcome=Outcome.ACCEPTED, notes="capability ok"), actor=QM
        )
