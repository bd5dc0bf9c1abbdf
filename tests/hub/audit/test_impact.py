"""Reverse searches on the walked floor: from the UV-A meter found out of tolerance, from op-7's revoked
certification, from a lot and a procedure revision, to every job each touched, with the entry proving it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from smart.hub.audit import impact, index
from smart.hub.audit.service import AuditCentral
from smart.ledger.entry import Entry
from smart.testing.cli import invoke
from tests.hub.audit.conftest import OUT_OF_TOLERANCE_AT, REVOKED_AT, Walked
from tests.node.test_job_walkthrough import AT


@pytest.fixture(scope="module")
def central(walked: Walked) -> Iterator[AuditCentral]:
    index.migrate(walked.owner_url)
    central = AuditCentral(
        walked.app_url,
        log_key=walked.keys.verifying_key("hub"),
        admin=walked.keys.verifying_key("ledger-admin"),
    )
    try:
        yield central
    finally:
        central.close()


def _entry(central: AuditCentral, idx: int) -> Entry:
    row = central.conn.execute("SELECT entry FROM public.ledger_entries WHERE idx = %s", (idx,)).fetchone()
    assert row is not None
    return Entry.from_bytes(bytes(row[0]), canonical=False)


def test_the_out_of_tolerance_meter_lists_every_job_it_measured_since_its_last_good_calibration(
    central: AuditCentral,
) -> None:
    last_good = AT.replace(month=4, day=2)  # the calibration the out-of-tolerance one followed
    (touched,) = central.impact("equipment/UV-METER-1", since=last_good)
    assert (touched.station, touched.job, touched.po_line, touched.serials) == (
        "pt-1",
        "J-1",
        "PO-4411/1",
        ("SN-002",),
    )
    proof = _entry(central, touched.idx)  # the station's own decision naming the meter
    assert proof.kind == "module.decision" and proof.node == "pt-1"
    assert "UV-METER-1" in proof.data["event"]["equipment"] and proof.data["event"]["job"] == "J-1"
    assert central.impact("equipment/UV-METER-1", since=OUT_OF_TOLERANCE_AT) == []  # nothing measured since
    assert central.impact("equipment/NO-SUCH-GAUGE") == []


def test_the_revoked_certification_lists_the_person_s_work_in_that_method_only(central: AuditCentral) -> None:
    (touched,) = central.impact("person/op-7", method="PT")
    assert (touched.station, touched.job) == ("pt-1", "J-1")
    assert _entry(central, touched.idx).data["event"]["person"] == "op-7"
    assert central.impact("person/op-7", method="MT") == []
    assert central.impact("person/op-7", since=REVOKED_AT) == []  # no work after the revocation
    (shipped,) = central.impact("person/qm-1")
    assert (shipped.station, shipped.job) == ("sr-1", "R-1")


def test_lots_and_procedure_revisions_find_their_jobs(central: AuditCentral) -> None:
    assert [(t.station, t.job) for t in central.impact("lot/PEN-2291")] == [("pt-1", "J-1")]
    assert central.impact("lot/PEN-1990") == []  # the expired lot was never used
    assert [t.job for t in central.impact("procedure/PT-PROC-12@D")] == ["J-1"]
    assert central.impact("procedure/PT-PROC-12@C") == []
    with pytest.raises(ValueError, match="--procedure needs --revision"):
        impact.query_ref(procedure="PT-PROC-12")
    with pytest.raises(ValueError, match="exactly one"):
        impact.query_ref(equipment="UV-METER-1", lot="PEN-2291")


def test_smart_audit_impact_prints_the_jobs_with_their_proving_entries(walked: Walked) -> None:
    env = {"SMART_DATABASE_URL": walked.owner_url, "SMART_KEYS_DIR": str(walked.keys.directory)}
    found = invoke("audit", "impact", "--equipment", "UV-METER-1", "--since", "2026-04-02", "--json", env=env)
    assert found.exit_code == 0, found.output
    body = json.loads(found.output)
    assert [(j["station"], j["job"], j["po_line"]) for j in body["jobs"]] == [("pt-1", "J-1", "PO-4411/1")]
    text = invoke("audit", "impact", "--person", "op-7", "--method", "PT", env=env)
    assert text.exit_code == 0 and "pt-1 J-1" in text.output and "proved by entry" in text.output
    bad = invoke("audit", "impact", "--procedure", "PT-PROC-12", env=env)
    assert bad.exit_code == 2 and "--revision" in bad.output
