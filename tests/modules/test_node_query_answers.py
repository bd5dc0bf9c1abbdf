"""NodeQuery answers: from a real station's store and ledger, genuine decisions of the penetrant contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from smart.bus import subjects
from smart.contracts import bundle as contract_bundle
from smart.contracts import facts as f
from smart.contracts import manifests
from smart.contracts.models import SmartContract, Station
from smart.contracts.rules import Level
from smart.keys import KeyStore
from smart.modules.node_query import answers, questions
from smart.node.agent import AgentConfig, NodeAgent

REPO = Path(__file__).resolve().parents[2]
AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: No leaf: the agent decides and records with no connection, as a cut-off station does (nats-py
#: refuses this address at once, so the agent's reconnect loop stops promptly at the end).
NO_LEAF = "nats://127.0.0.1:no-leaf"


def penetrant_envelope(keys: KeyStore, *, uva_min: float | None = None) -> bytes:
    """The reference penetrant contract for pt-1, signed by the hub (``uva_min``: a new revision)."""
    loaded = [m.manifest for m in manifests.load([REPO / "contracts"])]
    contract = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == "penetrant")
    station = next(m for m in loaded if isinstance(m, Station) and m.metadata.name == "pt-1")
    assert isinstance(contract, SmartContract) and isinstance(station, Station)
    bundle = contract_bundle.compile_bundle(contract, station)
    if uva_min is not None:
        for rule in bundle["rules"]:
            if rule["id"] == "pt-uva-intensity":
                rule["limits"]["min"] = uva_min
    return contract_bundle.sign(bundle, keys.signing_key("hub")).envelope


def shop_facts() -> f.Facts:
    """ana: certified PT level 2, exams on file; ben: his PT certificate ran out in 2024."""
    ana = f.Person(
        "ana",
        certifications=(
            f.Certification(
                "PT",
                Level.LEVEL_2,
                issued=datetime(2024, 3, 1, tzinfo=UTC),
                expires=datetime(2029, 3, 1, tzinfo=UTC),
                practical_samples=2,
            ),
        ),
        exams=(
            f.Exam("near-vision", datetime(2025, 9, 1, tzinfo=UTC), test="snellen-20-25-16in"),
            f.Exam("color-contrast", datetime(2024, 1, 10, tzinfo=UTC)),
        ),
        last_performed=MappingProxyType({"PT": datetime(2026, 5, 20, tzinfo=UTC)}),
    )
    ben = f.Person(
        "ben",
        certifications=(
            f.Certification(
                "PT",
                Level.LEVEL_2,
                issued=datetime(2019, 1, 1, tzinfo=UTC),
                expires=datetime(2024, 1, 1, tzinfo=UTC),
            ),
        ),
    )
    equipment = {
        "UV-METER-1": f.EquipmentRecord(
            "UV-METER-1", "light-meter", calibration=f.Calibration(datetime(2026, 2, 10, 9, tzinfo=UTC))
        ),
        "TAM-146040": f.EquipmentRecord("TAM-146040", "tam-panel"),
    }
    job = f.Job("J-1001", steps=("pre-clean", "penetrant-apply"))
    return f.Facts(
        people=MappingProxyType({"ana": ana, "ben": ben}),
        equipment=MappingProxyType(equipment),
        jobs=MappingProxyType({"J-1001": job}),
    )


@dataclass
class PtStation:
    agent: NodeAgent
    keys: KeyStore
    local: answers.Local

    def activate(self, envelope: bytes, kv_revision: int) -> None:
        """The mirror delivers a contract value: the agent's own path verifies, activates and records it."""
        self.agent.apply_contract_value(subjects.contract_key("pt-1", "penetrant"), kv_revision, envelope)

    def refuse_ben(self) -> None:
        """Ben badges in with an expired certificate: a genuine denial, recorded as ``gate.decision``."""
        event = f.Event(action="operate", at=AT, station="pt-1", person="ben", equipment=("UV-METER-1",))
        decision = self.agent.decide(event, self.local.facts)
        assert decision.outcome == "deny"

    def ask(self, text: str, *, badge: str | None = None) -> answers.Answer:
        return answers.answer(questions.parse(text), local=self.local, badge=badge, at=AT)


async def start_pt_station(root: Path) -> PtStation:
    keys = KeyStore(root / "keys")
    keys.signing_key("hub")
    agent = NodeAgent(AgentConfig(station="pt-1", leaf_url=NO_LEAF, data_dir=root / "pt-1", keys=keys))
    await agent.start()
    assert agent.store is not None and agent.ledger is not None
    local = answers.Local(station="pt-1", store=agent.store, log=agent.ledger, facts=shop_facts())
    return PtStation(agent, keys, local)


@pytest.fixture
async def pt1(tmp_path: Path) -> AsyncIterator[PtStation]:
    station = await start_pt_station(tmp_path)
    try:
        yield station
    finally:
        await station.agent.stop()


async def test_a_station_with_no_contract_says_it_refuses_everything(pt1: PtStation) -> None:
    status = pt1.ask("Station status?")
    assert "holds no valid contract" in status.text and "fail closed" in status.text
    assert "no active contract revision" in pt1.ask("contract revision").text


async def test_why_refused_names_the_rule_and_standard_of_a_genuine_denial(pt1: PtStation) -> None:
    assert "No operation has been refused" in pt1.ask("why was the last operation refused").text
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    pt1.refuse_ben()
    reply = pt1.ask("Hey SMART, why was the last operation refused?")
    assert reply.understood
    assert reply.lines[0].startswith("The last refusal was of operate at 2026-")
    certification = next(line for line in reply.lines if "pt-operator-certified" in line)
    assert certification == (
        "ben holds no current PT certification: rule pt-operator-certified of penetrant, "
        "NAS410 / EN4179 (certification of NDT personnel) rev 5 §8.4."
    )
    assert (
        "ben" not in reply.spoken.lower()
    )  # asked with no badge: said aloud, a reason about ben names no one
    assert "The operator does not meet rule pt operator certified, under NAS410 / EN4179." in reply.spoken
    told = pt1.ask("why was I refused", badge="ben")
    assert "Ben holds no current PT certification, under NAS410 / EN4179." in told.spoken
    assert told.lines == reply.lines
    assert "more, shown on the screen" in reply.spoken
    assert "ledger entry" not in reply.spoken


async def test_a_refusal_under_a_since_replaced_revision_says_so(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    first = pt1.agent.enforcer.revisions["penetrant"]
    pt1.refuse_ben()
    pt1.activate(penetrant_envelope(pt1.keys, uva_min=1100), 2)
    reply = pt1.ask("why was the last operation refused")
    assert f"That decision was judged under penetrant revision {first[:12]}, since replaced." in reply.lines
    assert any("rule pt-operator-certified of penetrant" in line for line in reply.lines)


async def test_an_allowed_decision_after_a_refusal_does_not_hide_it(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    pt1.refuse_ben()
    refused_at = pt1.local.log.size() - 1
    pt1.agent.record(
        kind="module.decision",
        subject="ana",
        data={
            "verb": "badge",
            "action": "operate",
            "outcome": "allow",
            "reasons": [],
            "module": "gatekeeper",
        },
        actor="ana",
    )
    reply = pt1.ask("why was I refused")
    assert f"ledger entry {refused_at}" in reply.lines[0]
    assert "allowed operate" in pt1.ask("what is the station status").text


async def test_my_certification_answers_for_the_badge_with_due_days_by_the_contract(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    reply = pt1.ask("when is my certification due", badge="ana")
    # Lapse (12 months since PT was last performed on 2026-05-20) falls before the 5-year recert.
    assert reply.lines[0] == (
        "Your PT certification is due 2027-05-20, in 353 days (it lapses unless PT is performed within "
        "12 months): rule pt-operator-certified, NAS410 / EN4179 (certification of NDT personnel) rev 5 §8.4."
    )
    assert "Your near-vision exam is due 2026-09-01, in 92 days (every 12 months): rule pt-near-vision." in (
        reply.lines
    )
    assert reply.spoken.startswith("Your PT certification is due 20 May 2027, in 353 days")
    assert "Badge in first" in pt1.ask("when is my certification due").text
    assert not any("required to work alone" in line for line in reply.lines)


async def test_a_trainee_is_told_the_level_the_station_requires(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    trainee = f.Person(
        "cai",
        certifications=(
            f.Certification(
                "PT",
                Level.TRAINEE,
                issued=datetime(2026, 1, 5, tzinfo=UTC),
                expires=datetime(2027, 1, 5, tzinfo=UTC),
            ),
        ),
        last_performed=MappingProxyType({"PT": datetime(2026, 5, 1, tzinfo=UTC)}),
    )
    facts = replace(pt1.local.facts, people=MappingProxyType({**pt1.local.facts.people, "cai": trainee}))
    local = replace(pt1.local, facts=facts)
    reply = answers.answer(questions.parse("when is my cert due"), local=local, badge="cai", at=AT)
    assert reply.lines[0].startswith("Your PT certification is due 2027-01-04, in 217 days (the certificate")
    assert "You hold trainee in PT; level-2 is required to work alone." in reply.lines


async def test_another_persons_certification_gives_only_its_standing(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    reply = pt1.ask("when is ben's certification due", badge="ana")
    assert reply.lines == (
        "ben's PT certification is not current (no current PT certification on record): "
        "rule pt-operator-certified, NAS410 / EN4179 (certification of NDT personnel) rev 5 §8.4.",
    )
    assert "No one called carol" in pt1.ask("when is carol's certification due").text


async def test_calibration_due_by_equipment_id_or_kind(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    by_id = pt1.ask("When is UV-METER-1 calibration due?")
    by_kind = pt1.ask("when is the light meter due for calibration")
    expected = (
        "UV-METER-1 (light-meter) calibration is due 2026-08-10, in 70 days (every 6 months): "
        "rule pt-light-meter-calibrated of"
    )
    assert by_id.lines == by_kind.lines
    assert by_id.lines[0].startswith(expected.removesuffix(" of")), by_id.lines
    assert "ASTM E1417/E1417M (liquid penetrant testing) rev 21" in by_id.text
    assert (
        "No active contract sets a calibration interval for TAM-146040"
        in pt1.ask("when is the tam panel calibration due").text
    )
    assert "no equipment called furnace" in pt1.ask("when is the furnace calibration due").text
    assert pt1.ask("when is the UV meter calibration due").lines == by_id.lines


async def test_current_job_comes_from_the_ledgers_job_transitions(pt1: PtStation) -> None:
    assert "No job is in hand" in pt1.ask("what is the current job").text
    transition = {"verb": "scan", "from": "badged-in", "to": "traveler-scanned", "allowed": True}
    pt1.agent.record(kind="job.transition", subject="J-1001", data=transition, actor="ana")
    step = {"verb": "step", "from": "gated", "to": "in-process", "allowed": True}
    pt1.agent.record(kind="job.transition", subject="J-1001", data=step, actor="ana")
    reply = pt1.ask("what job is this")
    assert reply.lines == (
        "Job J-1001 is in process at station pt-1.",
        "Steps done: pre-clean, penetrant-apply; the last was penetrant-apply.",
    )
    out = {"verb": "badge-out", "from": "handed-off", "to": "idle", "allowed": True}
    pt1.agent.record(kind="job.transition", subject="J-1001", data=out, actor="ana")
    assert "No job is in hand" in pt1.ask("current job").text


async def test_contract_revision_and_status_follow_the_store(pt1: PtStation) -> None:
    pt1.activate(penetrant_envelope(pt1.keys), 1)
    first = pt1.agent.enforcer.revisions["penetrant"]
    pt1.activate(penetrant_envelope(pt1.keys, uva_min=1100), 2)
    second = pt1.agent.enforcer.revisions["penetrant"]
    assert first != second
    reply = pt1.ask("which contract revision is active")
    assert reply.lines[0].startswith(f"penetrant: revision {second[:12]}, active since ")
    assert reply.lines[0].endswith(f", replacing {first[:12]}.")
    assert "ASTM E1417/E1417M (liquid penetrant testing) rev 21" in reply.lines[1]
    status = pt1.ask("what is the station status")
    assert status.lines[0] == f"Station pt-1 is enforcing 1 contract: penetrant revision {second[:8]}."
    assert "penetrant is in force until 2028-01-01 00:00 UTC (in 579 days)." in status.lines
    assert "not yet sent to the hub" in status.text


async def test_a_sentence_that_is_not_a_question_is_answered_with_what_may_be_asked(pt1: PtStation) -> None:
    reply = pt1.ask("open the pod bay doors")
    assert not reply.understood
    assert reply.spoken == "I did not understand 'open the pod bay doors'."
    assert "when is my certification due" in reply.text
    assert reply.to_json() == {
        "understood": False,
        "topic": None,
        "lines": list(reply.lines),
        "spoken": reply.spoken,
    }
    assert pt1.ask("current job").to_json()["topic"] == "current-job"
