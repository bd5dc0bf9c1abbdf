"""Invoices and credit notes as PDFs (WeasyPrint), from the HTML template beside this file.

The PDF is made when asked for, from the issued document (which never
changes) and the certificates it names, so the same document always
renders the same content and nothing is stored twice. The C of C itself is
not Pay's: AuditCentral prints it once at shipping, with the QR code of the
shipment's proof bundle, and that stored PDF is the one the client gets
(``smart.hub.audit.printing``); an invoice names the certificate each of
its lines was billed against.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from smart.hub.pay.store import Certificate, Document

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
)


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported when a PDF is made: it loads Pango, which the API does not need

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def document_pdf(document: Document, certificates: Mapping[int, Certificate]) -> bytes:
    title = "Invoice" if document.kind == "invoice" else "Credit note"
    return _pdf(
        _TEMPLATES.get_template("document.html").render(title=title, doc=document, certificates=certificates)
    )
