"""AI Central over a real hub log and real hub records: each kind fires where it should and not elsewhere.

Each finding is issued once onto the ledger, and shows on ``/advice`` with links to its records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
import pytest

from smart import ledger
from smart.access.roles import Role
from smart.hub.advice import findings as f
from smart.hub.advice import service
from smart.hub.advice.central import AI_CENTRAL, ISSUED, Analysis
from smart.hub.maintenance import web as maintenance_web
from smart.hub.service_log import ServiceNodeLog
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.runtime import ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.cli import invoke
from tests.hub.advice.shop import NOW, PT_LATER, AdviceShop, decision, make
from tests.hub.conftest import PASSWORD


@pytest.fixture(scope="module")
def shop(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdviceShop]:
    yield from make(postgres_floor, tmp_path_factory.mktemp("advice"))


@pytest.fixture(scope="module")
def analysis(shop: AdviceShop) -> Analysis:
    return shop.central().analyse()


def of(analysis: Analysis, kind: str) -> dict[str, f.Finding]:
    return {a.finding.key: a.finding for a in analysis.advice if a.finding.kind == kind}


def cited(shop: AdviceShop, finding: f.Finding) -> list[ledger.Entry]:
    """The hub log entries a finding's evidence names (each by its place in the log)."""
    found = []
    for evidence in finding.evidence:
        assert evidence.ledger_idx is not None and evidence.href == f"/advice/entries/{evidence.ledger_idx}"
        found.append(shop.hub_log.entries(evidence.ledger_idx, evidence.ledger_idx + 1)[0])
    return found


def test_a_reject_rate_rising_at_a_station_is_found_with_its_counts_and_a_steady_one_is_not(
    shop: AdviceShop, analysis: Analysis
) -> None:
    found = of(analysis, "reject-rate-rising")
    assert set(found) == {
        "reject-rate-rising/pt-1/*",
        "reject-rate-rising/pt-1/BRK-220",
    }  # mt-1: 3 of 10 both weeks
    pt = found["reject-rate-rising/pt-1/*"]
    assert (pt.figures["refused"], pt.figures["decisions"]) == (5, 10)
    assert (pt.figures["refusedBefore"], pt.figures["decisionsBefore"]) == (1, 10)
    assert "5 of 10 decisions (50%)" in pt.suggestion and "1 of 10 (10%)" in pt.suggestion
    entries = cited(shop, pt)
    assert len(entries) == 5
    assert all(
        e.node == "pt-1" and e.kind == "gate.decision" and e.data["outcome"] == "deny" for e in entries
    )


def test_a_reading_drifting_toward_its_limit_breaks_western_electric_rules_and_a_steady_one_does_not(
    shop: AdviceShop, analysis: Analysis
) -> None:
    found = of(analysis, "spc-drift")
    # mt-1's UV-A readings are steady; its white light rises six readings running, inside its limits
    assert set(found) == {"spc-drift/pt-1/uv-a-intensity", "spc-drift/mt-1/ambient-white-light"}
    trend = found["spc-drift/mt-1/ambient-white-light"]
    assert trend.figures["rules"] == ["spc.trend.ambient-white-light"]
    assert "6 readings in a row rising" in trend.suggestion and "upper control limit" in trend.suggestion
    assert trend.figures["latest"] < trend.figures["ucl"]
    assert [e.data["value"]["readings"]["ambient-white-light"]["value"] for e in cited(shop, trend)] == [
        1.0,
        1.05,
        1.1,
        1.15,
        1.2,
        1.25,
    ]
    drift = found["spc-drift/pt-1/uv-a-intensity"]
    assert "spc.we1.uv-a-intensity" in drift.figures["rules"]  # 1172 is below the 3σ limit
    assert drift.figures["latest"] == 1172 and drift.figures["lcl"] > 1172
    entries = cited(shop, drift)
    assert entries and all(e.node == "pt-1" and e.kind == "record.check" for e in entries)
    assert 1172 in [e.data["value"]["readings"]["uv-a-intensity"]["value"] for e in entries]


def test_a_check_done_later_each_day_is_found_and_one_done_at_the_same_hour_is_not(
    shop: AdviceShop, analysis: Analysis
) -> None:
    found = of(analysis, "check-later-each-day")
    assert set(found) == {"check-later-each-day/pt-1/uv-a-intensity"}
    later = found["check-later-each-day/pt-1/uv-a-intensity"]
    assert later.figures["times"] == [f"{6 + m // 60:02d}:{m % 60:02d}" for m in PT_LATER]
    assert [e.kind for e in cited(shop, later)] == ["record.check"] * len(PT_LATER)


def test_equipment_and_people_coming_due_are_found_within_thirty_days_and_not_beyond(
    shop: AdviceShop, analysis: Analysis
) -> None:
    found = of(analysis, "coming-due")
    # pt-1's meter in 10 days; mt-1's in 200 days is not advice yet; no credential lapses within 30 days
    assert set(found) == {"coming-due/equipment/UV-METER-1/calibration"}
    assert (
        found["coming-due/equipment/UV-METER-1/calibration"].evidence[0].href
        == "/maintenance/equipment/UV-METER-1"
    )
    with psycopg.connect(shop.owner_url) as conn:
        row = conn.execute(
            "SELECT badge_id, kind, expires_at FROM vault.credentials"
            " WHERE kind <> 'access' AND status = 'active' ORDER BY expires_at LIMIT 1"
        ).fetchone()
    assert row is not None
    badge, kind, expires = row
    soon = shop.central(now=expires - timedelta(days=20)).analyse()
    people = {k: x for k, x in of(soon, "coming-due").items() if x.figures["of"] == "person"}
    assert any(k.startswith(f"coming-due/person/{badge}/{kind}") for k in people), people
    assert all("name" not in x.suggestion.lower() for x in people.values())  # a badge, never a name
    assert not {
        k
        for k, x in of(shop.central(now=expires - timedelta(days=45)).analyse(), "coming-due").items()
        if x.figures["of"] == "person" and k.startswith(f"coming-due/person/{badge}/")
    }
    # Without the Vault's database (the Floor), SMART-ID is not read: said, and the rest analysed.
    floor_only = shop.central(people=False).analyse()
    assert floor_only.unread == ("vault.credentials: held by the Vault hub",)
    assert "coming-due/equipment/UV-METER-1/calibration" in of(floor_only, "coming-due")


def test_a_station_refused_mostly_by_one_rule_is_found_and_one_refused_by_many_rules_is_not(
    shop: AdviceShop, analysis: Analysis
) -> None:
    found = of(analysis, "refused-by-one-rule")
    assert set(found) == {"refused-by-one-rule/pt-1/pt-near-vision"}  # mt-1: three rules, one each
    one = found["refused-by-one-rule/pt-1/pt-near-vision"]
    assert (one.figures["count"], one.figures["refusals"]) == (4, 5)
    assert all(
        [r["rule"] for r in e.data["reasons"]] == ["pt-near-vision"] and e.node == "pt-1"
        for e in cited(shop, one)
    )


def test_each_finding_is_issued_once_as_advice_issued_with_its_evidence_and_again_only_when_it_changed(
    shop: AdviceShop,
) -> None:
    later = NOW + timedelta(hours=2)
    central = shop.central(now=later)
    first = central.run()
    assert first.issued_now == len(first.advice) == 7
    assert central.run().issued_now == 0  # re-run: the same unchanged findings, nothing new
    assert shop.central(now=later).run().issued_now == 0  # a restarted AI Central remembers from its node
    shop.gather()
    issued = shop.hub_entries(ISSUED)
    assert len(issued) == 7 and {e.node for e in issued} == {AI_CENTRAL}
    rising = next(e for e in issued if e.subject == "reject-rate-rising/pt-1/*")
    assert rising.data["advisory"] is True and rising.data["figures"]["refused"] == 5
    assert len(rising.data["evidence"]) == 5 and all(
        e["ledgerIdx"] is not None for e in rising.data["evidence"]
    )
    # One more refusal at pt-1: the rate and the one-rule findings changed and are issued again; the rest not.
    with ledger.NodeLog.open(shop.ledger_dir, node="pt-1", keys=shop.keys) as pt:
        pt.append(
            kind="gate.decision",
            subject="J-9",
            data=decision(NOW + timedelta(hours=1), True, "pt-near-vision"),
            actor="op-7",
        )
        pt.sign_head()
    shop.gather()
    again = central.run()
    assert {a.finding.key for a in again.advice if a.node_seq is not None and a.node_seq >= 7} == {
        "reject-rate-rising/pt-1/*",
        "reject-rate-rising/pt-1/BRK-220",
        "refused-by-one-rule/pt-1/pt-near-vision",
    }
    assert again.issued_now == 3


def test_smart_advice_shows_without_recording_and_runs_issuing_each_finding_once(shop: AdviceShop) -> None:
    root = shop.ledger_dir.parent
    (root / "secrets").mkdir(exist_ok=True)
    (root / "secrets" / "ledger-app.password").write_text(shop.app_password)
    env = {
        "SMART_DATABASE_URL": shop.owner_url,
        "SMART_KEYS_DIR": str(shop.keys.directory),
        "SMART_STATE_DIR": str(root),
        "SMART_SETTINGS_FILE": str(root / "no-settings.toml"),
    }
    before = len(ServiceNodeLog(shop.ledger_dir, shop.keys, node=AI_CENTRAL).entries())
    shown = invoke("advice", "show", "--json", env=env)
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.stdout)
    assert found["issued"] == 0 and "reject-rate-rising" in {a["kind"] for a in found["advice"]}
    assert len(ServiceNodeLog(shop.ledger_dir, shop.keys, node=AI_CENTRAL).entries()) == before
    fresh = [a for a in found["advice"] if a["entry"] is None]
    ran = invoke("advice", "run", "--json", env=env)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["issued"] == len(fresh)
    assert all(a["entry"] is not None for a in json.loads(ran.stdout)["advice"])
    again = invoke("advice", "run", env=env)
    assert again.exit_code == 0 and again.stdout.rstrip().endswith("0 issued now"), again.output


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


async def test_the_advice_page_shows_each_suggestion_with_links_to_its_records_signed_in_only(
    shop: AdviceShop, analysis: Analysis
) -> None:
    logins = Logins(shop.owner_url)
    logins.add("qm-anna", PASSWORD, role=Role.QUALITY_MANAGER)
    logins.add("op-7", PASSWORD, role=Role.OPERATOR)
    guard = auth.Guard(logins)
    advice = service.AdviceService(shop.central())
    ran = advice.advice.run()  # what the hub's periodic run does; the page then shows that run
    pages = [auth.router(logins), *advice.routers(guard), maintenance_web.page_router(shop.equipment, guard)]
    app = create_app(_no_floor, routers=pages)
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            assert (await anonymous.get("/api/v1/advice")).status_code == 401
            assert (await anonymous.get("/advice")).status_code in (303, 401)
        async with async_page(DESKTOP) as page:
            await page.goto(f"{url}/login?next=/advice")
            await page.fill("input[name=username]", "op-7")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            assert (await page.goto(f"{url}/advice")).status == 403  # an operator reads no advice
            await page.goto(f"{url}/login?next=/advice")
            await page.fill("input[name=username]", "qm-anna")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.goto(f"{url}/advice")
            kinds = await page.eval_on_selector_all("section.advice", "s => s.map(e => e.dataset.kind)")
            assert sorted(set(kinds)) == sorted(f.KINDS)
            assert await page.locator("nav a[href='/advice']").count() == 1
            text = await page.text_content("body") or ""
            assert "pt-1 is refusing more: 5 of 10 decisions" in text
            issued = await page.locator("section.advice .issued").all_text_contents()
            assert issued == [f"Issued as ai-central entry #{a.node_seq}." for a in ran.advice]
            await page.screenshot(path=str(screenshot_path("advice")), full_page=True)
            hrefs = await page.eval_on_selector_all("a.evidence", "a => a.map(e => e.getAttribute('href'))")
            assert len(hrefs) == sum(len(a.finding.evidence) for a in analysis.advice)
            async with httpx.AsyncClient(base_url=url) as session:  # every link lands on its record
                await session.post("/login", data={"username": "qm-anna", "password": PASSWORD})
                for href in sorted(set(hrefs)):
                    landed = await session.get(href)
                    assert landed.status_code == 200, href
                    idx = href.removeprefix("/advice/entries/")
                    assert idx == href or f"<td>{idx}</td>" in landed.text
            first = next(h for h in hrefs if h.startswith("/advice/entries/"))
            await page.goto(f"{url}{first}")
            assert (await page.text_content("#entry-kind")) == "gate.decision"
            assert '"outcome": "deny"' in (await page.text_content("#entry-data") or "")
            await page.screenshot(path=str(screenshot_path("advice-evidence-entry")), full_page=True)
            assert (await page.goto(f"{url}/advice/entries/999999")).status == 404
    finally:
        server.should_exit = True
        await task
