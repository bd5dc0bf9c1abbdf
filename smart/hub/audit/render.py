"""The packet as an HTML file and a PDF (WeasyPrint), with a table of contents and the proofs appendix.

One template serves the hub page, the HTML file and the PDF, so what an
auditor reads on screen and on paper is the same. The PDF carries the
machine-readable appendix as an embedded file (``proofs.json``) beside its
printed index of the cited entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from jinja2 import Environment, PackageLoader, select_autoescape

from smart.hub.audit.packet import Packet
from smart.ledger import merkle
from smart.ledger.entry import Entry

_ENV = Environment(
    loader=PackageLoader("smart.hub.audit", "templates"), autoescape=select_autoescape(["html"])
)


@dataclass(frozen=True, slots=True)
class CitedRow:
    idx: int
    node: str
    node_seq: int
    kind: str
    subject: str
    leaf: str


def cited_rows(conn: psycopg.Connection[Any], packet: Packet) -> list[CitedRow]:
    rows = conn.execute(
        "SELECT idx, entry FROM public.ledger_entries WHERE idx = ANY(%s) ORDER BY idx", (list(packet.cited),)
    ).fetchall()
    out = []
    for idx, raw in rows:
        entry = Entry.from_bytes(bytes(raw), canonical=False)
        out.append(
            CitedRow(
                int(idx),
                entry.node,
                entry.node_seq,
                entry.kind,
                entry.subject,
                merkle.leaf_hash(bytes(raw)).hex(),
            )
        )
    return out


def html(
    packet: Packet,
    rows: list[CitedRow],
    *,
    appendix: bytes | None = None,
    appendix_name: str = "proofs.json",
    checkpoint: str | None = None,
    proof_size: int | None = None,
    downloads: list[tuple[str, str]] | None = None,
) -> str:
    text = appendix.decode().replace("</", "<\\/") if appendix is not None else None
    return _ENV.get_template("packet.html").render(
        packet=packet,
        cited_rows=rows,
        appendix_json=text,
        appendix_name=appendix_name,
        checkpoint=checkpoint,
        proof_size=proof_size,
        downloads=downloads or [],
    )


def pdf(document: str, *, appendix: bytes | None = None) -> bytes:
    """The packet's HTML as a PDF (bookmarks from the headings), the appendix attached as ``proofs.json``."""
    import weasyprint

    attachments = []
    if appendix is not None:
        attachments.append(
            weasyprint.Attachment(string=appendix, name="proofs.json", description="proof bundles")
        )
    result = weasyprint.HTML(string=document).write_pdf(attachments=attachments)
    assert result is not None
    return bytes(result)
