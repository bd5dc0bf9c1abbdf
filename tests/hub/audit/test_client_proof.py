"""The client's proof of the walked shipment: the C of C's QR code decoded back to its bundle, and the
offline page in headless Chromium accepting the genuine bundle and refusing forged ones (issue 12's
cases: a checkpoint signed by a key that is not the log's, a witness line repeated to fake a quorum,
an edited entry, a checkpoint of another origin), with screenshots in ``test-artifacts/``."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
import rfc8785
from PIL import Image
from pyzbar import pyzbar

from smart.hub.audit import clientproof, index
from smart.hub.audit.service import AuditCentral
from smart.keys import SigningKey
from smart.ledger import bundle, checkpoint, trust
from smart.ledger.hub_store import HubLog
from smart.testing.browser import screenshot_path
from smart.testing.cli import invoke
from tests.hub.audit.conftest import Walked


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


@pytest.fixture(scope="module")
def shipped(walked: Walked, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``smart audit coc J-1``: the C of C, the shipment's bundle and the offline page, as printed."""
    out = tmp_path_factory.mktemp("coc")
    env = {"SMART_DATABASE_URL": walked.owner_url, "SMART_KEYS_DIR": str(walked.keys.directory)}
    done = invoke(
        "audit", "coc", "J-1", "-o", str(out), "--min-witnesses", "2", "--shop", "Demo NDT", env=env
    )
    assert done.exit_code == 0, done.output
    return out


def _decoded_qr(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    (picture,) = [image for page in reader.pages for image in page.images]
    found = pyzbar.decode(Image.open(io.BytesIO(picture.data)).convert("L"))
    assert len(found) == 1
    return str(found[0].data.decode())


def test_the_c_of_c_carries_a_qr_code_that_decodes_back_to_the_shipment_s_bundle(
    shipped: Path, walked: Walked
) -> None:
    pdf = (shipped / "PO-4411-1-SN-002-coc.pdf").read_bytes()
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for expected in ("Certificate of Conformance", "Demo NDT", "PO-4411 line 1", "BRK-220", "SN-002", "qm-1"):
        assert expected in text, expected
    assert "coc-signature" in text and "ASTM E1417-21" in text
    code = _decoded_qr(pdf)
    origin, index_, size, digest = clientproof.parse_qr(code)
    raw = (shipped / "PO-4411-1-SN-002-shipment-proof.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == digest  # the code names exactly this bundle
    assert len(json.loads(raw)["key_ids"]["witnesses"]) >= 2  # the witnesses the administrator established
    proved = clientproof.check(raw, code, trust.load(walked.keys.directory), min_witnesses=2)
    assert (proved.origin, proved.index, proved.size) == (origin, index_, size)
    assert proved.entry.node == "sr-1" and proved.entry.data["verb"] == "ship"
    assert proved.entry.data["effects"]["quantities"]["accepted"] == 2
    ok = invoke(
        "verify", str(shipped / "PO-4411-1-SN-002-shipment-proof.json"), "--keys", str(walked.keys.directory)
    )
    assert ok.exit_code == 0 and "(module.decision, R-1)" in ok.output, ok.output
    other = clientproof.qr_text(origin, index_ - 1, size, raw)
    with pytest.raises(bundle.BundleError, match="names another bundle"):
        clientproof.check(raw, other, trust.load(walked.keys.directory))


def _forgeries(walked: Walked, genuine: bytes) -> dict[str, tuple[bytes, str]]:
    """Each forged bundle and the part of the bundle the refusal must name."""
    body = json.loads(genuine)
    signed = checkpoint.SignedCheckpoint.parse(body["checkpoint"])
    point = signed.checkpoint
    hub = HubLog.connect(walked.app_url, admin=walked.keys.verifying_key("ledger-admin"))
    try:
        made = hub.proof_bundle(body["index"], size=point.size, log_key=walked.keys.verifying_key("hub"))
    finally:
        hub.close()
    assert made.to_bytes() == genuine
    cosignatures = tuple(s for s in signed.signatures if s.is_cosignature)
    assert len(cosignatures) >= 2

    def with_checkpoint(note: checkpoint.SignedCheckpoint, entry: bytes | None = None) -> bytes:
        return bundle.ProofBundle(
            body["index"],
            entry or made.entry,
            tuple(made.inclusion_proof),
            note,
            made.log_key_id,
            made.witness_key_ids,
        ).to_bytes()

    impostor = SigningKey.generate("hub")  # named as the log, but not the log's key
    not_the_log = checkpoint.SignedCheckpoint(point, (checkpoint.sign(point, impostor), *cosignatures))
    log_line = next(s for s in signed.signatures if not s.is_cosignature)
    repeated = checkpoint.SignedCheckpoint(
        point, (log_line, cosignatures[0], cosignatures[0], cosignatures[0])
    )
    entry: dict[str, Any] = json.loads(made.entry)
    entry["data"]["effects"]["quantities"]["accepted"] = 5  # two parts shipped, five claimed
    elsewhere = checkpoint.Checkpoint("evil.example/ledger", point.size, point.root)
    hub_key = walked.keys.signing_key("hub")
    other_origin = checkpoint.SignedCheckpoint(elsewhere, (checkpoint.sign(elsewhere, hub_key),))
    return {
        "not-the-log-key": (
            with_checkpoint(not_the_log),
            "is not signed by the log key hub",
        ),
        "repeated-witness": (
            with_checkpoint(repeated),
            "cosigned by 1 distinct trusted witnesses; 2 required",
        ),
        "edited-entry": (
            with_checkpoint(signed, rfc8785.dumps(entry)),
            "inclusion_proof: does not prove the entry",
        ),
        "wrong-origin": (
            with_checkpoint(other_origin),
            "is for log 'evil.example/ledger', not the trusted log",
        ),
    }


def test_the_offline_page_accepts_the_genuine_bundle_and_refuses_forged_ones(
    shipped: Path, walked: Walked, page: Any
) -> None:
    genuine = (shipped / "PO-4411-1-SN-002-shipment-proof.json").read_bytes()
    code = _decoded_qr((shipped / "PO-4411-1-SN-002-coc.pdf").read_bytes())
    verify_page = shipped / "verify-shipment.html"
    assert "http" not in verify_page.read_text().replace("http-equiv", "")  # nothing from a network
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(verify_page.resolve().as_uri())

    def check(raw: bytes, qr: str, name: str) -> tuple[str, str]:
        page.fill("#bundle", raw.decode())
        page.fill("#qr", qr)
        page.evaluate("document.getElementById('result').hidden = true")
        page.click("#check")
        page.wait_for_selector("#result:not([hidden])")
        page.screenshot(path=str(screenshot_path(f"audit-offline-verify-{name}")), full_page=True)
        return str(page.get_attribute("#result", "data-verdict")), str(page.inner_text("#result"))

    verdict, shown = check(genuine, code, "genuine")
    assert verdict == "ok", shown
    for expected in ("Proven", "PO-4411 line 1", "BRK-220 SN-002", "accepted 2", "qm-1", "witness-"):
        assert expected in shown, expected
    assert float(str(page.get_attribute("#result", "data-ms"))) > 0
    trusted = trust.load(walked.keys.directory)
    for name, (forged, reason) in _forgeries(walked, genuine).items():
        verdict, shown = check(forged, "", name)
        assert verdict == "refused" and reason in shown, (name, shown)
        with pytest.raises(bundle.BundleError, match=re.escape(reason)):
            bundle.verify(forged, trusted, min_witnesses=2)  # smart verify refuses it for the same reason
    verdict, shown = check(
        genuine, clientproof.qr_text("smart.local/ledger", 3, 93, b"another"), "swapped-qr"
    )
    assert verdict == "refused" and "names another bundle" in shown
    assert all(url.startswith("file://") for url in requests), requests
