"""What comes back from the floor: sr-1's receipt, pt-1's hand-off, the job view across them, milestones."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from nats.js import JetStreamContext

from smart import ledger
from smart.hub import handoff_central, projects
from smart.hub.gathering import HubNodeGathering
from smart.hub.release import job_view
from smart.hub.release import store as release
from smart.ledger import hub_store
from tests.hub.release.conftest import handoff
from tests.hub.shop import QM, Work, entered


def _decision(verb: str, job: str, serial: str, quantities: dict[str, int], at: str) -> dict[str, Any]:
    """A ``module.decision`` entry's data as the logistics module's decision is recorded at a station."""
    return {
        "verb": verb,
        "action": verb,
        "event": {
            "action": verb,
            "at": at,
            "station": "sr-1",
            "person": "ship-3",
            "job": job,
            "scan": {"po": "PO-4411", "line": "1", "part": "BRK-220", "serial": serial, "operation": None},
        },
        "module": "logistics",
        "outcome": "allow",
        "revisions": {},
        "reasons": [],
        "effects": {"job": job, "quantities": quantities},
    }


def _handoff(job: str, station: str, serial: str) -> dict[str, Any]:
    return {
        "job": job,
        "station": station,
        "record": {
            "id": job,
            "serials": [serial],
            "po": "PO-4411",
            "line": "1",
            "part": "BRK-220",
            "signed_by": "op-7",
        },
        "released": {"releasedAt": "2026-12-03T10:00:00+00:00"},
    }


async def test_part_arrival_the_job_across_stations_and_the_po_milestones_come_from_the_stations_entries(
    work: Work, js: JetStreamContext
) -> None:
    entered(work)
    await handoff(work, js).release("PO-4411", "1", actor=QM)
    stations = work.ledger_dir.parent / "stations"
    with (
        ledger.NodeLog.open(stations, node="sr-1", keys=work.keys) as sr,
        ledger.NodeLog.open(stations, node="pt-1", keys=work.keys) as pt,
    ):
        sr.append(
            kind="module.decision",
            subject="R-1",
            data=_decision("receive", "R-1", "SN-002", {"received": 1}, "2026-12-02T08:00:00+00:00"),
            actor="ship-3",
        )
        # a refused receipt is no arrival
        refused = _decision("receive", "R-2", "SN-001", {"received": 1}, "2026-12-02T08:05:00+00:00")
        sr.append(kind="module.decision", subject="R-2", data={**refused, "outcome": "deny"}, actor="ship-3")
        pt.append(kind="job.handoff", subject="J-1", data=_handoff("J-1", "pt-1", "SN-002"), actor="op-7")
        sr.sign_head()
        pt.sign_head()
    with hub_store.HubLog.connect(work.db.app_url, key=work.keys.signing_key("hub")) as hub_log:
        gathered = HubNodeGathering(stations, hub_log, work.keys).gather_once()
        assert sum(g.entries for g in gathered) == 3
    floor = release.FloorEvents.connect(work.db.app_url)
    jobs = handoff_central.HandoffCentral.connect(work.db.app_url)
    try:
        assert floor.index_once() == 1
        assert jobs.index_once() == 1
    finally:
        floor.close()
        jobs.close()

    with psycopg.connect(work.db.app_url, autocommit=True) as conn:
        (arrived,) = release.arrivals(conn, po="PO-4411", line="1")
        assert (arrived.station, arrived.quantity, arrived.serials) == ("sr-1", 1, ("SN-002",))
        traveler = work.travelers.latest("PO-4411", "1")
        view = job_view.job_view(
            conn, po="PO-4411", line="1", serials=("SN-001", "SN-002"), traveler=traveler
        )
        assert view.received_quantity == 1
        by_serial = {trace.serial: trace for trace in view.serials}
        sn2 = [(op.station, op.state, op.job) for op in by_serial["SN-002"].operations]
        assert sn2 == [("sr-1", "received", "R-1"), ("pt-1", "done", "J-1")]  # pt-1's record linked to sr-1's
        assert [op.state for op in by_serial["SN-001"].operations] == ["waiting", "waiting"]

        board = projects.progress(conn, "PO-4411", today=date(2026, 12, 10))
        assert board is not None
        reached = {m.name: m.reached_at for m in board.milestones}
        assert reached["received"] is not None and reached["in process"] is not None
        assert reached["inspected"] is not None  # pt-1, the one work station on the route, handed off
        assert reached["shipped"] is None and reached["invoiced"] is None
        assert not board.late
        assert projects.progress(conn, "PO-4411", today=date(2026, 12, 19)).late_lines == ("1",)  # type: ignore[union-attr]
