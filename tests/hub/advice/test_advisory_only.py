"""Advice never changes a decision: a real station decides the same before AI Central spoke and after.

A pt-1 station under the reference penetrant contract (a real floor: NATS leaf, its ledger shipped
to the hub's PostgreSQL by the real intake) decides a round of checks and badges: three refusals
by the near-vision rule among them. AI Central reads that hub log and issues its advice onto the
ledger; the hub log then holds the ``advice.issued`` entries. The same round again is decided
exactly as before, and the station received nothing (no record, no message) from the advice.
The code is checked as well: nothing under ``smart/hub/advice`` can reach a station (no NATS,
no bus, no station or module code, no publish).
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from smart.hub.advice import service
from smart.hub.advice.central import AI_CENTRAL, ISSUED
from smart.hub.gathering import HubNodeGathering
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase
from tests.hub.advice.shop import UTC_ZONE
from tests.node.conftest import Hub, eventually
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, Bench, at, bench, reading

ADVICE = Path(__file__).resolve().parents[3] / "smart" / "hub" / "advice"


def _decided(answer: dict[str, Any]) -> tuple[Any, ...]:
    """What a decision said: allowed or its outcome, the state it left, its rules, in order."""
    rules = tuple(sorted(str(r.get("rule")) for r in answer.get("reasons") or ()))
    return (answer.get("allowed"), answer.get("outcome"), answer.get("state"), rules)


async def _round(pt: Bench) -> list[tuple[Any, ...]]:
    answers = [
        await pt.check(
            "uv-a-intensity",
            {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")},
        ),
        await pt.check("uv-a-intensity", {"uv-a-intensity": reading(940, "µW/cm²")}),
        await pt.check("tam-panel"),
    ]
    for person in ("op-9", "tr-1", "op-9", "op-9"):
        answers.append(await pt.job("badge", person=person, at=at(0)))
    answers.append(await pt.job("badge", person="op-7", at=at(1)))
    answers.append(await pt.job("start", at=at(2)))  # out of order: no traveler scanned
    answers.append(await pt.job("badge-out", at=at(3)))
    return [_decided(a) for a in answers]


async def test_a_station_decides_the_same_with_advice_issued_and_without(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, database: FreshDatabase, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        without = await _round(pt)
        assert any(d[0] is False for d in without) and any(d[0] is True for d in without)  # real refusals
        assert ("pt-near-vision",) in [d[3] for d in without]
        assert pt.runtime.agent.ledger is not None
        decided = pt.runtime.agent.ledger.size()

        def shipped() -> bool:
            with psycopg.connect(database.url) as conn:
                row = conn.execute("SELECT count(*) FROM ledger_entries WHERE node = 'pt-1'").fetchone()
            return row is not None and row[0] >= decided

        await eventually(shipped, what="pt-1's decisions in the hub log")
        received = len(pt.entries("record.received"))

        ledger_dir = tmp_path / "hub-ledger"
        central = service.central(database.url, ledger_dir=ledger_dir, keys=keys, zone=UTC_ZONE)
        central.clock = lambda: AT + timedelta(hours=1)
        issued = central.run()
        kinds = {a.finding.kind for a in issued.advice}
        assert issued.issued_now >= 2 and {"refused-by-one-rule", "reject-rate-rising"} <= kinds
        with hub_store.HubLog.connect(
            database.url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
        ) as hub_log:
            HubNodeGathering(ledger_dir, hub_log, keys).gather_once()
            in_log = [e for e in hub_log.entries(0) if e.kind == ISSUED]
        assert len(in_log) == issued.issued_now and {e.node for e in in_log} == {AI_CENTRAL}
        one_rule = next(e for e in in_log if e.subject == "refused-by-one-rule/pt-1/pt-near-vision")
        assert one_rule.data["figures"]["count"] == 3

        with_advice = await _round(pt)
        assert with_advice == without
        # The station got nothing from the advice: no hub record mirrored since, no entry of advice.
        assert len(pt.entries("record.received")) == received
        station_kinds = {e.kind for e in pt.runtime.agent.ledger.entries(0)}
        assert not {k for k in station_kinds if k.startswith("advice")}


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_advice_code_can_publish_to_a_station_or_its_records() -> None:
    files = sorted(ADVICE.glob("*.py"))
    assert {p.name for p in files} >= {"central.py", "findings.py", "sources.py", "service.py", "web.py"}
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        reach = {
            m
            for m in _imports(tree)
            if m.split(".")[0] == "nats"
            or m.startswith(("smart.bus", "smart.node", "smart.modules", "smart.runtime"))
        }
        assert not reach, f"{path.name} imports {reach}"
        calls = {
            n.func.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        assert not calls & {"publish", "publish_record", "put", "request", "jetstream"}, (
            f"{path.name}: {calls}"
        )
        strings = [
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        assert not [s for s in strings if s.startswith(("station.", "smart.station", "records."))], path.name
