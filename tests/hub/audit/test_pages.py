"""AuditCentral's hub pages on the walked floor: behind sign-in, read-only for the auditor, in Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smart.hub.audit import index, printing
from smart.hub.audit import web as audit_web
from smart.hub.audit.service import AuditCentral
from smart.hub.web import auth
from smart.testing.browser import screenshot_path
from tests.hub.audit.conftest import Walked
from tests.hub.conftest import HubDatabase, sign_in, signed_in_pages
from tests.node.conftest import REPO


@pytest.fixture(scope="module")
def pages(walked: Walked) -> Iterator[TestClient]:
    index.migrate(walked.owner_url)

    def router(url: str, guard: auth.Guard) -> Any:
        return audit_web.router(
            url,
            guard,
            log_key=walked.keys.verifying_key("hub"),
            admin=walked.keys.verifying_key("ledger-admin"),
            contracts_dir=REPO / "contracts",
            shop="Demo NDT",
        )

    with signed_in_pages(HubDatabase(walked.owner_url, walked.app_url), router) as client:
        yield client


def test_audit_pages_need_sign_in_and_the_audit_permission(pages: TestClient) -> None:
    pages.cookies.clear()
    assert pages.get("/audit").status_code == 303  # to the sign-in page
    assert pages.get("/api/v1/audit/impact?kind=equipment&id=UV-METER-1").status_code == 401
    sign_in(pages, "op-7")  # an operator may not read audits
    assert pages.get("/audit").status_code == 403
    assert pages.get("/audit/packet.pdf?job=J-1").status_code == 403
    pages.cookies.clear()


def test_the_c_of_c_printed_at_shipping_is_listed_and_served_as_it_was_stored(
    pages: TestClient, walked: Walked
) -> None:
    central = AuditCentral(
        walked.owner_url,  # the app role's password is the cluster's: a later fixture may set another
        log_key=walked.keys.verifying_key("hub"),
        admin=walked.keys.verifying_key("ledger-admin"),
        contracts_dir=REPO / "contracts",
    )
    try:
        printer = printing.CertificatePrinter(central, shop="Demo NDT", min_cosignatures=2)
        printed = printer.print_pending()  # a pass of the hub's printer over the walked shipment
        assert printer.print_pending() == []  # once
        held = printing.stored(central.conn, printed[0].ledger_idx)
    finally:
        central.close()
    assert [(p.po, p.line, p.station, p.job, p.client) for p in printed] == [
        ("PO-4411", "1", "sr-1", "R-1", "AEROSPAR")
    ]
    assert held is not None
    sign_in(pages, "nadcap-auditor")
    listed = pages.get("/audit/certificates?po=PO-4411&line=1")
    assert listed.status_code == 200 and 'data-po-line="PO-4411/1"' in listed.text
    assert "No C of C printed for PO-9" in pages.get("/audit/certificates?po=PO-9").text
    pdf = pages.get(f"/audit/certificates/{printed[0].ledger_idx}.pdf")
    assert pdf.status_code == 200 and pdf.content == held[1]
    assert pages.get(f"/audit/certificates/{printed[0].ledger_idx}.json").content == held[2]
    assert pages.get("/audit/coc.pdf?job=J-1").content == held[1]  # the one printed, not a new one
    assert pages.get("/audit/certificates/1.pdf").status_code == 404
    pages.cookies.clear()


def test_the_auditor_searches_opens_the_packet_downloads_it_and_runs_reverse_searches(
    pages: TestClient,
) -> None:
    sign_in(pages, "nadcap-auditor")
    by_serial = pages.get("/audit?serial=SN-002")
    assert (
        by_serial.status_code == 200
        and 'data-job="J-1"' in by_serial.text
        and 'data-job="R-1"' in by_serial.text
    )
    by_part_and_day = pages.get("/audit?part=BRK-220&on=2026-06-01")
    assert 'data-job="J-1"' in by_part_and_day.text
    assert 'data-job="J-1"' not in pages.get("/audit?part=BRK-220&on=2026-06-02").text
    assert 'data-job="J-1"' in pages.get("/audit?person=op-7&equipment=UV-METER-1").text
    assert pages.get("/audit?on=June").status_code == 422

    packet = pages.get("/audit/packet?job=J-1")
    assert packet.status_code == 200 and "People at the moment of work" in packet.text
    assert "/audit/packet.pdf?job=J-1" in packet.text and "/audit/coc.pdf?job=J-1" in packet.text
    proofs = json.loads(pages.get("/audit/proofs.json?job=J-1").content)
    assert proofs["format"] == "smart-audit-proofs/v1" and len(proofs["bundles"]) == len(proofs["cited"])
    assert pages.get("/audit/coc.pdf?job=J-1").content.startswith(b"%PDF")
    assert pages.get("/audit/packet?job=J-404").status_code == 404

    impact = pages.get("/audit/impact?kind=equipment&id=UV-METER-1&since=2026-04-02")
    assert impact.status_code == 200 and 'data-job="J-1"' in impact.text
    lapsed = pages.get("/api/v1/audit/impact?kind=person&id=op-7&method=PT").json()
    assert [(j["station"], j["job"]) for j in lapsed["jobs"]] == [("pt-1", "J-1")]
    assert pages.get("/audit/impact?kind=procedure&id=PT-PROC-12").status_code == 422  # no revision
    assert pages.post("/audit", data={"job": "J-1"}).status_code == 405  # nothing to write here
    pages.cookies.clear()


def test_the_packet_page_in_chromium(pages: TestClient, page: Any) -> None:
    sign_in(pages, "nadcap-auditor")
    html = pages.get("/audit/packet?job=J-1").text
    pages.cookies.clear()
    page.set_content(html)
    assert page.locator("section[data-section]").count() == 9
    assert "op-7's examinations" in page.inner_text("#section-3")
    page.screenshot(path=str(screenshot_path("audit-packet-J-1")), full_page=True)
