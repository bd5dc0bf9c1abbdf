"""The client's proof: the C of C with a QR code naming the shipment's proof bundle, and an offline check.

At shipping, sr-1 records the allowed ``ship`` decision (Logistics' count of
every part) once the C of C is signed with the signer's own badge. The client
receives the parts, a printed C of C and one proof bundle: that entry with its
inclusion proof against a cosigned checkpoint. The C of C's QR code says which
bundle (``SMART-PROOF:1:<origin>:<index>:<size>:<SHA-256 of the bundle>``), so a
bundle swapped for another is caught. The client checks the bundle with
``smart verify`` or with :func:`verify_page`: one self-contained HTML file
(no network, no library: the browser's WebCrypto Ed25519 and SHA-256) that
holds the shop's trusted keys and says what was proven.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import segno
from jinja2 import Environment, PackageLoader, select_autoescape

from smart.hub.audit import packet as packets
from smart.keys import VerifyingKey
from smart.ledger import bundle, checkpoint
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import Trust

_ENV = Environment(
    loader=PackageLoader("smart.hub.audit", "templates"), autoescape=select_autoescape(["html"])
)
PREFIX = "SMART-PROOF"


class NotShipped(LookupError):
    """The job has no allowed shipment on the ledger: no C of C can be printed for it."""


@dataclass(frozen=True, slots=True)
class Certificate:
    client: str | None
    po: str
    line: str
    part: str | None
    serials: tuple[str, ...]
    quantity: int | None
    spec: str | None
    processes: tuple[str, ...]
    shipped_at: str
    signer: str
    authority: str


@dataclass(frozen=True, slots=True)
class ClientProof:
    certificate: Certificate
    bundle: bytes
    qr_text: str
    index: int


def qr_text(origin: str, index: int, size: int, raw: bytes) -> str:
    return f"{PREFIX}:1:{origin}:{index}:{size}:{hashlib.sha256(raw).hexdigest()}"


def parse_qr(text: str) -> tuple[str, int, int, str]:
    """(origin, index, size, bundle SHA-256) from a C of C's code; ``ValueError`` if it is not one."""
    parts = text.strip().split(":")
    if len(parts) != 6 or parts[0] != PREFIX or parts[1] != "1":
        raise ValueError(f"not a {PREFIX} code: {text[:40]!r}")
    return parts[2], int(parts[3]), int(parts[4]), parts[5]


def _shipment(made: packets.Packet) -> tuple[int, Mapping[str, Any]]:
    for job in made.jobs:
        for idx, entry in job.entries:
            data = entry.data
            if (
                entry.kind == "module.decision"
                and data.get("verb") == "ship"
                and data.get("module") == "logistics"
                and data.get("outcome") == "allow"
            ):
                return idx, data
    raise NotShipped(f"no allowed shipment on the ledger for {made.asked}")


def client_proof(hub: HubLog, made: packets.Packet, *, log_key: VerifyingKey, size: int) -> ClientProof:
    """The shipment's proof bundle, its QR text and the certificate's facts, all from the ledger."""
    idx, data = _shipment(made)
    made_bundle = hub.proof_bundle(idx, size=size, log_key=log_key).to_bytes()
    facts = {label: value for s in made.sections for item in s.items for label, value in item.facts}
    release = next((dict(i.facts) for i in made.sections[6].items if dict(i.facts).get("verb") == "ship"), {})
    flow = next((dict(i.facts) for i in made.sections[0].items if "held it" in i.title), {})
    processes = tuple(
        f"{j.station}: {v}"
        for j in made.jobs
        for k, v in _traveler_facts(made, j.station)
        if k == "procedure run"
    )
    event = data.get("event", {})
    quantities = data.get("effects", {}).get("quantities", {})
    certificate = Certificate(
        client=facts.get("client"),
        po=str(made.po),
        line=str(made.line),
        part=made.part,
        serials=made.serials,
        quantity=quantities.get("accepted"),
        spec=flow.get("flowdown spec"),
        processes=processes,
        shipped_at=str(event.get("at")),
        signer=release.get("signed by", str(event.get("person"))),
        authority=release.get("signer's authorities then", "—"),
    )
    return ClientProof(certificate, made_bundle, qr_text(hub.origin, idx, size, made_bundle), idx)


def _traveler_facts(made: packets.Packet, station: str) -> tuple[tuple[str, str], ...]:
    for item in made.sections[1].items:
        if item.title.startswith(f"{station}: job"):
            return item.facts
    return ()


def certificate_html(proof: ClientProof, *, shop: str, bundle_name: str) -> str:
    qr = segno.make(proof.qr_text, error="m")
    return _ENV.get_template("coc.html").render(
        coc=proof.certificate,
        shop=shop,
        qr_uri=qr.png_data_uri(scale=4, border=4),
        qr_text=proof.qr_text,
        bundle_name=bundle_name,
    )


def certificate_pdf(proof: ClientProof, *, shop: str, bundle_name: str) -> bytes:
    import weasyprint

    result = weasyprint.HTML(string=certificate_html(proof, shop=shop, bundle_name=bundle_name)).write_pdf()
    assert result is not None
    return bytes(result)


def trust_json(trusted: Trust, *, min_witnesses: int) -> str:
    """The keys the offline page trusts, each with its signed-note key hash (the page never derives one)."""
    import base64

    def key(k: VerifyingKey, *, cosignature: bool) -> dict[str, str]:
        hashed = checkpoint.note_key_hash(k.name, k.raw, cosignature=cosignature)
        return {**k.to_json(), "key_hash": base64.b64encode(hashed).decode()}

    body = {
        "origin": trusted.origin,
        "log": key(trusted.log, cosignature=False),
        "witnesses": [key(trusted.witnesses[n], cosignature=True) for n in sorted(trusted.witnesses)],
        "min_witnesses": min_witnesses,
    }
    return json.dumps(body).replace("</", "<\\/")


def verify_page(trusted: Trust, *, shop: str, min_witnesses: int = 1) -> str:
    """The self-contained offline page that checks a shipment's bundle against ``trusted``."""
    return _ENV.get_template("verify.html").render(
        trust=trusted,
        trust_json=trust_json(trusted, min_witnesses=min_witnesses),
        shop=shop,
        min_witnesses=min_witnesses,
    )


def check(raw: bytes, code: str, trusted: Trust, *, min_witnesses: int = 0) -> bundle.Verified:
    """What ``smart verify`` does, plus the C of C's code: the bundle must be the one it names."""
    origin, index, size, digest = parse_qr(code)
    proved = bundle.verify(raw, trusted, min_witnesses=min_witnesses)
    if (origin, index, size, digest) != (
        proved.origin,
        proved.index,
        proved.size,
        hashlib.sha256(raw).hexdigest(),
    ):
        raise bundle.BundleError("qr", "the certificate's code names another bundle than this one")
    return proved
