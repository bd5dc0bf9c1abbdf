"""The job audit packet of the walked job, section by section against what happened at pt-1 and sr-1."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pypdf
import pytest
import yaml

from smart.hub.audit import checklist, index, packet, proofs, render
from smart.hub.audit.service import AuditCentral, Rendered
from smart.ledger import trust
from smart.testing.cli import invoke
from tests.hub.audit.conftest import OUT_OF_TOLERANCE_AT, REVOKED_AT, VISION_DAYS, Walked
from tests.node.conftest import REPO
from tests.node.test_job_walkthrough import AT

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def central(walked: Walked) -> Iterator[AuditCentral]:
    index.migrate(walked.owner_url)
    central = AuditCentral(
        walked.app_url,
        log_key=walked.keys.verifying_key("hub"),
        admin=walked.keys.verifying_key("ledger-admin"),
        contracts_dir=REPO / "contracts",
    )
    try:
        yield central
    finally:
        central.close()


@pytest.fixture(scope="module")
def rendered(central: AuditCentral) -> Rendered:
    return central.rendered(central.packet(job="J-1"))


def _section(made: packet.Packet, number: int) -> packet.Section:
    return made.sections[number - 1]


def _item(made: packet.Packet, number: int, title_part: str) -> packet.Item:
    found = [i for i in _section(made, number).items if title_part in i.title]
    assert found, (title_part, [i.title for i in _section(made, number).items])
    return found[0]


def _facts(item: packet.Item) -> dict[str, str]:
    return dict(item.facts)


def test_the_packet_follows_the_part_from_receiving_through_penetrant_to_shipping(rendered: Rendered) -> None:
    made = rendered.packet
    assert (made.po, made.line, made.part, made.serials) == ("PO-4411", "1", "BRK-220", ("SN-002",))
    assert {(j.station, j.job) for j in made.jobs} == {("sr-1", "R-1"), ("pt-1", "J-1")}
    assert [j.started for j in made.jobs] == sorted(j.started for j in made.jobs)
    assert [s.title for s in made.sections] == list(packet.SECTION_TITLES)
    # 1 contract: the PO as entered, its review and release, and the line as each station held it
    review = _facts(_item(made, 1, "Contract review"))
    assert review["reviewer"] == "demo-shop" and review["outcome"] == "accepted"
    entered = _facts(_item(made, 1, "PO PO-4411 entered"))
    assert "ASTM E1417-21" in entered["flowdown"] and "Nadcap required" in entered["flowdown"]
    held = _facts(_item(made, 1, "as pt-1 held it"))
    assert held["contract reviewed by"] == "demo-shop" and held["flowdown spec"] == "ASTM E1417-21"
    # 2 traveler: pt-1's operation, its operator, times and procedure revision in force then
    pt = _facts(_item(made, 2, "pt-1: job J-1"))
    assert pt["operators"] == "op-7" and pt["procedure run"] == "PT-PROC-12 rev D"
    assert pt["from"] == "2026-06-01 12:01 UTC" and pt["to"] == "2026-06-01 15:21 UTC"
    assert pt["contract revision in force"].startswith("penetrant@")
    procedure = _facts(_item(made, 2, "Procedure PT-PROC-12 in force at pt-1"))
    assert procedure["revision in force"] == "D" and procedure["approved by (Level 3)"] == "l3-1"
    route = [v for k, v in _item(made, 2, "Traveler").facts if k.startswith("operation")]
    assert route == [
        "pt-1 penetrant: PT-PROC-12 rev D, ASTM E1417-21",
        "sr-1 shipping: SR-PROC-2 rev A, ASTM E1417-21",
    ]


def test_people_are_shown_as_they_were_at_the_work_and_what_changed_since(rendered: Rendered) -> None:
    made = rendered.packet
    op7 = _item(made, 3, "op-7 at pt-1")
    facts = _facts(op7)
    assert facts["level"] == "level-2" and facts["method"] == "PT"
    assert facts["valid at the time of work"] == "yes"  # revoked only later
    assert "revoked" not in facts  # the record the station held then was not revoked
    assert (
        op7.note is not None and "revoked since" in op7.note and REVOKED_AT.strftime("%Y-%m-%d") in op7.note
    )
    assert facts["last performed PT before the work"] == (AT - 7 * DAY).strftime("%Y-%m-%d %H:%M UTC")
    eyes = _item(made, 3, "op-7's examinations")
    exam = _facts(eyes)
    taken = AT - VISION_DAYS * DAY
    assert exam["near-vision taken"] == taken.strftime("%Y-%m-%d %H:%M UTC")
    assert exam["near-vision test"] == "jaeger-1-12in"
    assert exam["near-vision due (every 12 months)"] == taken.date().replace(year=taken.year + 1).isoformat()
    assert exam["near-vision current at the work"] == "yes"  # valid then …
    assert eyes.note is not None and "near-vision exam lapsed" in eyes.note  # … lapsed after the job
    qm = _facts(_item(made, 3, "qm-1 at sr-1"))
    assert "coc-signature" in qm["authorities"]


def test_equipment_consumables_results_and_release_are_the_walk(rendered: Rendered) -> None:
    made = rendered.packet
    meter = _item(made, 4, "UV-METER-1 at pt-1")
    assert _facts(meter)["calibration in force"] == (AT - 60 * DAY).strftime("%Y-%m-%d %H:%M UTC")
    assert _facts(meter)["in tolerance then"] == "yes"
    assert meter.note is not None and OUT_OF_TOLERANCE_AT.strftime("%Y-%m-%d") in meter.note
    uva = _facts(_item(made, 4, "check uv-a-intensity"))
    assert uva["uv-a-intensity"] == "1180 µW/cm²" and uva["ambient-white-light"] == "1.5 fc"
    assert _facts(_item(made, 4, "check tam-panel"))["passed"] == "yes"
    lot = _facts(_item(made, 5, "lot PEN-2291"))
    assert lot["in date at the work"] == "yes" and lot["material"] == "penetrant"
    assert not [i for i in _section(made, 5).items if "PEN-1990" in i.title]  # the expired lot was not used
    dwell = _facts(_item(made, 6, "penetrant-dwell"))
    assert dwell["part-temperature"] == "72 °F" and dwell["dwell-time"] == "12 min"
    assert _facts(_item(made, 6, "J-1: dry"))["part-temperature"] == "120 °F"
    assert _facts(_item(made, 6, "J-1: result"))["NCRs"] == "0"
    ship = _facts(_item(made, 7, "R-1: ship"))
    assert ship["signed by"] == "qm-1" and "coc-signature" in ship["signer's authorities then"]
    assert (ship["quantity accepted"], ship["quantity on the PO line"], ship["reconciled"]) == (
        "2",
        "2",
        "yes",
    )
    assert _facts(_item(made, 7, "J-1: release"))["signed by"] == "op-7"


def test_integrity_cites_the_blocks_that_fired_and_every_item_names_its_checklist_question(
    rendered: Rendered,
) -> None:
    made = rendered.packet
    block = _item(made, 8, "Block at pt-1")
    assert "op-9's near-vision exam" in _facts(block)["pt-near-vision"]
    reverse = _facts(_item(made, 9, "equipment UV-METER-1"))
    assert any(k == "pt-1 J-1" for k in reverse)
    mapping = checklist.questions()
    for section in made.sections:
        for item in section.items:
            assert item.question == mapping[item.key]
            assert item.question.label.endswith(item.question.question or checklist.NOT_MAPPED)
    assert {i.question.checklist for s in made.sections for i in s.items} >= {"AC7114", "AC7114/1"}
    assert "question <b>not mapped</b>" in rendered.html  # no question id is made up
    assert len(made.cited) > 20


class _Questions(HTMLParser):
    """(section, item, checklist, question shown) for each item of a rendered packet, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.section = 0
        self.item = ""
        self.shown: list[tuple[int, str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("data-section"):
            self.section = int(str(found["data-section"]))
        elif found.get("data-item"):
            self.item = str(found["data-item"])
        elif found.get("data-checklist"):
            self.shown.append(
                (self.section, self.item, str(found["data-checklist"]), str(found["data-question"]))
            )


def _shown_questions(html: str) -> list[tuple[int, str, str, str]]:
    parser = _Questions()
    parser.feed(html)
    return parser.shown


def _data() -> dict[str, Any]:
    items: dict[str, Any] = yaml.safe_load(checklist.CHECKLIST.read_text(encoding="utf-8"))["items"]
    return items


def test_each_sections_items_carry_their_checklist_mapping_from_the_data(
    central: AuditCentral, rendered: Rendered, tmp_path: Path
) -> None:
    data = _data()
    # the data: every item a known question id with the revision and copy it was read from, or none
    for key, item in data.items():
        assert item["question"] is None or (item.get("revision") and item.get("source")), key
    made = rendered.packet
    expected = [
        (s.number, i.key, data[i.key]["checklist"], data[i.key]["question"] or "not mapped")
        for s in made.sections
        for i in s.items
    ]
    assert {number for number, *_ in expected} == set(range(1, 10))  # every section has mapped items
    assert _shown_questions(rendered.html) == expected

    # a question id the shop reads from its copy is printed with that copy's revision and source
    mapped = yaml.safe_load(checklist.CHECKLIST.read_text(encoding="utf-8"))
    mapped["items"]["vision"].update(question="9.9.9", revision="Rev Z", source="the test's own copy")
    path = tmp_path / "checklist.yaml"
    path.write_text(yaml.safe_dump(mapped), encoding="utf-8")
    remade = packet.build(
        central.conn, job="J-1", contracts_dir=REPO / "contracts", questions=checklist.load(path)
    )
    html = render.html(remade, render.cited_rows(central.conn, remade))
    shown = _shown_questions(html)
    assert {q for _, key, _, q in shown if key == "vision"} == {"9.9.9"}
    assert {q for _, key, _, q in shown if key != "vision"} == {"not mapped"}
    assert "<b>AC7114</b> Rev Z question <b>9.9.9</b> (from the test&#39;s own copy)" in html


def test_the_checklist_file_is_refused_with_the_item_at_fault(tmp_path: Path) -> None:
    broken = tmp_path / "checklist.yaml"
    broken.write_text("checklists: {AC7114: x}\nitems:\n  traveler: {checklist: AC9999, topic: t}\n")
    with pytest.raises(checklist.ChecklistError, match=r"items\.traveler\.checklist: 'AC9999'"):
        checklist.load(broken)
    broken.write_text("checklists: {AC7114: x}\nitems:\n  traveler: {checklist: AC7114}\n")
    with pytest.raises(checklist.ChecklistError, match=r"items\.traveler\.topic"):
        checklist.load(broken)
    broken.write_text(
        "checklists: {AC7114: x}\nitems:\n  traveler: {checklist: AC7114, topic: t, question: '3.1'}\n"
    )
    with pytest.raises(checklist.ChecklistError, match=r"items\.traveler: .*needs the checklist revision"):
        checklist.load(broken)  # an id without the revision it was read from is no claim


def test_the_same_packet_by_po_line_or_serial_and_a_clear_answer_for_an_unknown_job(
    central: AuditCentral, rendered: Rendered
) -> None:
    by_line = central.packet(po="PO-4411", line="1")
    by_serial = central.packet(serial="SN-002")
    jobs = [(j.station, j.job) for j in rendered.packet.jobs]
    assert [(j.station, j.job) for j in by_line.jobs] == jobs == [(j.station, j.job) for j in by_serial.jobs]
    with pytest.raises(packet.JobNotFound, match="no station job on the ledger for job J-404"):
        central.packet(job="J-404")


def test_smart_audit_job_writes_html_pdf_and_proofs_that_smart_verify_checks(
    walked: Walked, rendered: Rendered, tmp_path: Path
) -> None:
    env = {"SMART_DATABASE_URL": walked.owner_url, "SMART_KEYS_DIR": str(walked.keys.directory)}
    done = invoke("audit", "job", "J-1", "-o", str(tmp_path), "--contracts", str(REPO / "contracts"), env=env)
    assert done.exit_code == 0, done.output
    html = (tmp_path / "PO-4411-1-SN-002.html").read_text()
    pdf_bytes = (tmp_path / "PO-4411-1-SN-002.pdf").read_bytes()
    appendix = tmp_path / "PO-4411-1-SN-002-proofs.json"
    assert 'id="proofs"' in html and "UV-METER-1" in html

    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes))
    assert len(reader.pages) >= 4
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "Job audit packet: job J-1",
        "Contents",
        "People at the moment of work",
        "UV-METER-1",
        "jaeger-1-12in",
        "1180 µW/cm²",
        "Appendix: proofs of the cited entries",
        "not mapped",
    ):
        assert expected in text, expected
    printed = " ".join(text.split())
    shown = _shown_questions(html)
    for listed in {c for _, _, c, _ in shown}:  # each item's mapping is printed too, as in the data
        items = [key for _, key, c, _ in shown if c == listed]
        assert printed.count(f"Answers {listed} question not mapped") == len(items), (listed, items)
    first = reader.pages[0].extract_text() + reader.pages[1].extract_text()
    assert "Reverse search" in first  # the table of contents, with its page numbers
    assert [o.title for o in reader.outline if not isinstance(o, list)][:1] == ["Job audit packet: job J-1"]
    attached = reader.attachments["proofs.json"][0]
    assert attached == appendix.read_bytes()

    keys_dir = walked.keys.directory
    ok = invoke("verify", str(appendix), "--keys", str(keys_dir), "--min-witnesses", "2")
    assert ok.exit_code == 0 and ok.output.startswith("ok: "), ok.output
    checked = proofs.verify(appendix.read_bytes(), trust.load(keys_dir), min_witnesses=2)
    assert [v.index for v in checked.verified] == list(rendered.packet.cited)

    body = json.loads(appendix.read_bytes())
    one = json.loads(body["bundles"][0])
    one["index"] += 1  # a bundle moved to another entry's place
    body["bundles"][0] = json.dumps(one, separators=(",", ":"), sort_keys=True)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(body))
    refused = invoke("verify", str(forged), "--keys", str(keys_dir))
    assert refused.exit_code == 1 and "FAILED: bundles[0]:" in refused.output, refused.output
    body = json.loads(appendix.read_bytes())
    body["bundles"].pop()
    forged.write_text(json.dumps(body))
    dropped = invoke("verify", str(forged), "--keys", str(keys_dir))
    assert dropped.exit_code == 1 and "missing" in dropped.output, dropped.output


def test_the_packet_judges_exams_by_the_settings_contracts_folder_from_any_working_directory(
    walked: Walked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``smart audit job`` without ``--contracts``, and the hub's audit pages, read ``SMART_CONTRACTS_DIR``:
    started in a directory with no ``contracts/`` (a pod's ``/``, a cron job's home), the packet still
    states when each exam fell due, by the contracts' intervals."""
    from smart.hub.audit import web as audit_web
    from smart.testing.plugin import make_settings

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {
        "SMART_DATABASE_URL": walked.owner_url,
        "SMART_KEYS_DIR": str(walked.keys.directory),
        "SMART_CONTRACTS_DIR": str(REPO / "contracts"),
    }
    done = invoke("audit", "job", "J-1", "-o", str(tmp_path), "--no-pdf", env=env)
    assert done.exit_code == 0, done.output
    assert "near-vision due (every 12 months)" in (tmp_path / "PO-4411-1-SN-002.html").read_text()

    settings = make_settings(
        tmp_path / "state", keys_dir=walked.keys.directory, contracts_dir=REPO / "contracts"
    )
    pages = audit_web.audit_keys(settings)
    assert pages["contracts_dir"] == REPO / "contracts"
    assert packet.Rules.load(pages["contracts_dir"]).exams["penetrant"]
