"""QACentral's first-pass yield by customer on the walked floor (PO-4411 of AEROSPAR through pt-1 and sr-1).

The customer is found from the job's hand-off (its PO) and ClientManager's PO register; a job counts
once for its customer and its part however many stations it went through. The NCR case (a job of the
same PO rejected at a real pt-1) is in ``tests/hub/means/test_means_at_station.py``.
"""

from __future__ import annotations

from pathlib import Path

from smart.hub import handoff_central, means
from smart.hub.qa import store as qa_store
from smart.hub.service_log import ServiceNodeLog
from tests.hub.audit.conftest import Walked


def test_the_walked_job_is_first_pass_for_its_customer_part_and_station(
    walked: Walked, tmp_path: Path
) -> None:
    handoff_central.migrate(walked.owner_url)
    means.migrate(walked.owner_url)
    handoffs = handoff_central.HandoffCentral.connect(walked.owner_url)
    ncrs = qa_store.NcrIndex.connect(walked.owner_url)
    qa = qa_store.QaCentral(
        walked.owner_url,  # the app role's password is the cluster's: a later fixture may set another
        ledger=ServiceNodeLog(tmp_path / "qa-ledger", walked.keys, node=qa_store.NODE),
        stations=["pt-1", "sr-1"],
    )
    try:
        handoffs.index_once()
        ncrs.index_once()
        yields = {(y.by, y.key): (y.jobs, y.first_pass, y.rate) for y in qa.first_pass_yield()}
    finally:
        qa.close()
        ncrs.close()
        handoffs.close()
    assert yields == {
        ("customer", "AEROSPAR"): (1, 1, 1.0),
        ("part", "BRK-220"): (1, 1, 1.0),
        ("station", "pt-1"): (1, 1, 1.0),
    }
