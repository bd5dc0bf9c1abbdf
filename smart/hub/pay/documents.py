"""Invoice, credit note and C of C as PDFs (WeasyPrint), from HTML templates beside this file.

The PDF is made when asked for, from the issued document (which never
changes) and the certificates it names, so the same document always
renders the same content and nothing is stored twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from smart.hub.clients.models import LineView
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


def coc_pdf(certificate: Certificate, line: LineView) -> bytes:
    return _pdf(_TEMPLATES.get_template("coc.html").render(c=certificate, line=line))
