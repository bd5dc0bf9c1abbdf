"""A course completion grants its credential through SMART-ID, and a station's offline admission accepts it.

The Vault's SMART-ID on a real PostgreSQL holds the demo shop's people; the
instructor in-1 holds no certification, so trainee tr-1 may not operate
beside them until in-1 completes the PT instructor course. The station's
judgement is ``smart.access.admission.admit`` with a ``Verifier`` holding
only SMART-ID's public key, as a station runs it offline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from smart.access import admission
from smart.access.credential import Kind
from smart.access.verify import Verifier
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles
from smart.hub.education import service as education
from smart.hub.vault import service as vault
from smart.hub.vault.smartid import SmartId, VaultError
from smart.keys import KeyStore
from smart.runtime import demo_shop
from smart.testing.plugin import FreshDatabase

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def test_completion_grants_training_credential_the_station_accepts(
    database: FreshDatabase, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys")
    smartid = SmartId(
        database.url,
        key=keys.signing_key(vault.CREDENTIAL_KEY),
        ledger=vault.SharedNodeLog(tmp_path / "ledger", keys),
        clock=lambda: NOW,
    )
    demo_shop.enrol(smartid, NOW)
    smartid.add_person(employee_id="D-201", name="Demo Instructor", badge_id="in-1", actor="qm-1")
    vault_url = database_roles.ensure_login_role(database.url, HubRole.VAULT, tmp_path / "secrets")
    education.migrate(database.url, role=database_roles.DATABASE_ROLES[HubRole.VAULT])
    school = education.Education(vault_url, smartid)

    station = Verifier(keys={smartid.key.key_id: smartid.key.verifying}, revocations={})
    trainee = [c.token for c in smartid.credentials("D-101") if c.status == "active"]

    def operate(supervisor_tokens: list[str]) -> bool:
        return admission.admit(
            "operate",
            badge="tr-1",
            tokens=trainee,
            verifier=station,
            now=NOW,
            station="pt-1",
            method="PT",
            supervisor_badge="in-1",
            supervisor_tokens=supervisor_tokens,
        ).allowed

    assert operate([]) is False  # a trainee alone, or beside someone who is no instructor yet

    granted = school.complete("D-201", course="ndt-instructor-pt", on=NOW.date(), actor="l3-1")
    assert [(g.credential.kind, dict(g.credential.scope)) for g in granted] == [
        (Kind.TRAINING, {"course": "ndt-instructor-pt", "method": "PT", "role": "instructor"})
    ]
    assert operate([granted[0].token]) is True

    # Sessions, bad input named and nothing written, and who is due.
    school.add_session(course="uv-safety", starts_on=date(2026, 7, 1), place="Booth 2", seats=8, actor="qm-1")
    with pytest.raises(VaultError, match="course 'uv-safty' is not one of"):
        school.add_session(
            course="uv-safty", starts_on=date(2026, 7, 1), place="Booth 2", seats=8, actor="qm-1"
        )
    with pytest.raises(VaultError, match="in the future"):
        school.complete("D-201", course="uv-safety", on=NOW.date() + timedelta(days=9), actor="l3-1")
    assert [s.course for s in school.sessions()] == ["uv-safety"]
    school.complete("D-007", course="uv-safety", on=NOW.date() - timedelta(days=350), actor="qm-1")
    due = school.due(within_days=30, today=NOW.date())
    assert [(d.employee_id, d.course, d.lapsed) for d in due] == [("D-007", "uv-safety", False)]
    assert not school.due(within_days=5, today=NOW.date())
    # HubQuery at the Vault answers from SMART-ID's records: op-9's near-vision exam lapsed (395 days).
    from smart.hub.hubquery.answers import HubQuery

    query = HubQuery("vault", smartid=smartid, today=lambda: NOW.date())
    answer = query.ask("Hey SMART, who is due for an eye exam this month?")
    due_people = {row["employee"] for row in answer.rows}
    assert "D-009" in due_people and "D-007" not in due_people, answer
    assert query.ask("status of PO 4411").text == "the Business hub answers that, not this one"

    # PeopleOps: a new hire at pt-1 and sr-1 and what they still lack at each.
    from smart.hub.peopleops import onboarding

    onboarding.migrate(database.url, role=database_roles.DATABASE_ROLES[HubRole.VAULT])
    people = onboarding.PeopleOps(vault_url, smartid)
    smartid.add_person(employee_id="D-401", name="Demo New Hire", badge_id="nh-1", actor="qm-1")
    smartid.issue("D-401", kind=Kind.ACCESS, scope={"station": "sr-1"}, actor="qm-1")
    people.hire("D-401", hired_on=NOW.date(), position="operator", stations=["pt-1", "sr-1"], actor="qm-1")
    lacking = {
        station: [i.item for i in items if not i.done] for station, items in people.checklist("D-401").items()
    }
    assert lacking == {"pt-1": ["badge", "eye exam", "certification", "training"], "sr-1": []}
    school.complete("D-401", course="uv-safety", on=NOW.date(), actor="qm-1")
    assert "training" not in [i.item for i in people.checklist("D-401")["pt-1"] if not i.done]
    with pytest.raises(VaultError, match="no known process"):
        people.hire("D-401", hired_on=NOW.date(), position="operator", stations=["zz-9"], actor="qm-1")

    # The same refusals over HTTP: the API answers 422 with their words, the page shows them, and
    # neither records anything.
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from smart.access.roles import Role
    from smart.hub.education import web as education_web
    from smart.hub.vault.logins import Logins
    from smart.hub.web.auth import SESSION_COOKIE, Guard

    logins = Logins(database.url)
    logins.add("qm", "correct horse battery", role=Role.QUALITY_MANAGER, employee_id="D-901")
    token = logins.sign_in("qm", "correct horse battery")
    assert token is not None
    app = FastAPI()
    app.include_router(education_web.router(school, Guard(logins)))
    session = {"course": "uv-safty", "starts_on": "2026-07-01", "place": "Booth 2", "seats": 8}
    with TestClient(app, cookies={SESSION_COOKIE: token}) as web:
        refused = web.post("/api/v1/education/sessions", json=session)
        assert refused.status_code == 422 and "course 'uv-safty' is not one of" in refused.json()["detail"]
        future = (NOW.date() + timedelta(days=9)).isoformat()
        page = web.post(
            "/education/completions", data={"employee_id": "D-201", "course": "uv-safety", "on": future}
        )
        assert page.status_code == 422 and "is in the future" in page.text
        made = web.post("/api/v1/education/sessions", json={**session, "course": "uv-safety"})
        assert made.status_code == 201 and made.json()["course"] == "uv-safety"
        assert web.get("/education").status_code == 200
    assert [s.course for s in school.sessions()] == ["uv-safety", "uv-safety"]
    logins.close()
