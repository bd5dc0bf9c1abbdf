"""Pay on a real database: invoices only for lines the stations' entries show shipped with a signed C of C."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import psycopg
import pypdf
import pytest

from smart import ledger
from smart.contracts import facts as f
from smart.hub.clients.store import Refused
from smart.hub.gathering import HubNodeGathering
from smart.hub.pay import documents
from smart.hub.pay import store as pay_store
from smart.hub.projects import store as projects_store
from smart.hub.release import store as release
from smart.hub.service_log import PAY
from smart.ledger import hub_store
from smart.node import records
from tests.hub.release.test_floor import _decision
from tests.hub.shop import QM, Work, client, line, order


def _job_record(job: str, po_line: str, serials: tuple[str, ...], signer: str | None) -> dict[str, Any]:
    value = f.Job(id=job, serials=serials, po="PO-4411", line=po_line, part="BRK-220", coc_signed_by=signer)
    return {"kind": "job", "value": records.plain(value)}


def shipped_floor(work: Work) -> None:
    """sr-1's entries: line 1 shipped with its C of C signed, line 2 shipped unsigned, line 3 not shipped."""
    work.clients.add_client(client(), actor=QM)
    work.clients.add_po(
        order(
            "PO-4411",
            line("1"),
            line("2", serials=("SN-003", "SN-004")),
            line("3", serials=("SN-005", "SN-006")),
        ),
        actor=QM,
    )
    stations = work.ledger_dir.parent / "stations"
    with ledger.NodeLog.open(stations, node="sr-1", keys=work.keys) as sr:
        for job, po_line, serials, signer in (
            ("S-1", "1", ("SN-001", "SN-002"), "qm-1"),
            ("S-2", "2", ("SN-003", "SN-004"), None),
        ):
            sr.append(
                kind="record.job", subject=job, data=_job_record(job, po_line, serials, signer), actor="qm-1"
            )
            shipment = _decision("ship", job, serials[0], {"accepted": 2}, "2026-12-16T14:00:00+00:00")
            shipment["event"]["scan"]["line"] = po_line
            sr.append(kind="module.decision", subject=job, data=shipment, actor="qm-1")
        sr.sign_head()
    with hub_store.HubLog.connect(work.db.app_url, key=work.keys.signing_key("hub")) as hub_log:
        HubNodeGathering(stations, hub_log, work.keys).gather_once()
    for index in (release.FloorEvents, pay_store.CertificateIndex):
        opened = index.connect(work.db.app_url)
        try:
            opened.index_once()
        finally:
            opened.close()


def test_an_invoice_only_for_a_shipped_certified_line_at_the_po_lines_price_and_a_credit_for_a_return(
    work: Work,
) -> None:
    pay_store.migrate(work.db.owner_url)
    shipped_floor(work)
    pay = pay_store.Pay(work.db.app_url, ledger=work.node(PAY))
    work.closing.append(pay.close)

    for lines, field, words in (
        (["2"], "lines[0]", "without a signed certificate of conformance"),
        (["3"], "lines[0]", "has not shipped"),
        (["1", "2"], "lines[1]", "without a signed certificate"),  # one bad line refuses the whole invoice
        (["9"], "lines[0]", "has no line 9"),
    ):
        with pytest.raises(Refused) as refused:
            pay.invoice("PO-4411", lines, actor=QM)
        assert (refused.value.field, words in refused.value.message) == (field, True), refused.value
    assert work.node(PAY).entries() == [] and pay.documents() == []  # nothing written

    invoice = pay.invoice("PO-4411", ["1"], actor=QM)
    (billed,) = invoice.lines
    assert (billed.quantity, billed.unit_price, invoice.total) == (2, Decimal("42.50"), Decimal("85.00"))
    with psycopg.connect(work.db.app_url, autocommit=True) as conn:
        (certificate,) = pay_store.certificates(conn, "PO-4411", "1")
        assert pay_store.certificates(conn, "PO-4411", "2") == []  # an unsigned job record is no C of C
    assert billed.certificate == certificate.ledger_idx and certificate.signed_by == "qm-1"
    (entry,) = work.node(PAY).entries()
    assert entry.kind == "invoice.issued" and entry.actor == QM and entry.data["total"] == "85.00"
    with pytest.raises(Refused, match="invoiced already"):
        pay.invoice("PO-4411", ["1"], actor=QM)

    with pytest.raises(Refused) as too_many:
        pay.credit(invoice.number, [("1", 3)], reason="RMA-7 returned", actor=QM)
    assert too_many.value.field == "lines[0].quantity"
    credit = pay.credit(invoice.number, [("1", 1)], reason="RMA-7: SN-002 returned", actor=QM)
    assert (
        credit.kind == "credit_note"
        and credit.total == Decimal("-42.50")
        and credit.credits == invoice.number
    )
    with pytest.raises(Refused, match="1 of 2 left"):
        pay.credit(invoice.number, [("1", 2)], reason="again", actor=QM)
    assert [e.kind for e in work.node(PAY).entries()] == ["invoice.issued", "credit_note.issued"]

    # The invoice's PDF (Pay's page and API, and the client's copy on the feed) names the C of C each
    # line was billed against; the C of C itself is the one AuditCentral printed at shipping.
    pdf = documents.document_pdf(invoice, {certificate.ledger_idx: certificate})
    text = " ".join(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert f"Invoice {invoice.number}" in text and "PO-4411" in text and "85.00" in text, text
    assert f"S-1 at sr-1, signed by qm-1 {certificate.at:%Y-%m-%d}" in text, text
    assert f"index {certificate.ledger_idx} of the shop's log" in text, text

    # the invoice reaches Projects through the ledger: the PO line's "invoiced" milestone
    with hub_store.HubLog.connect(work.db.app_url, key=work.keys.signing_key("hub")) as hub_log:
        HubNodeGathering(work.ledger_dir, hub_log, work.keys).gather_once()
    index = projects_store.InvoiceIndex.connect(work.db.app_url)
    try:
        assert index.index_once() == 2
    finally:
        index.close()
    with psycopg.connect(work.db.app_url, autocommit=True) as conn:
        assert projects_store.invoiced_at(conn, "PO-4411", "1") == invoice.issued_at
        assert projects_store.invoiced_at(conn, "PO-4411", "2") is None
