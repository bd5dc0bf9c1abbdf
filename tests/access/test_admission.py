"""Admission at a station: the scanned badge's tokens verified offline, then the permits decide."""

from __future__ import annotations

from datetime import date, timedelta

from smart.access import Kind, Verifier, issuing, permits, tokens
from smart.access.admission import admit
from smart.access.derive import standings
from smart.access.records import Record
from smart.intervals import add_months
from smart.keys import SigningKey
from tests.access.conftest import NOW
from tests.access.test_certification import certified, eyes, performed

TODAY = NOW.date()


def badge_tokens(
    issuer: SigningKey, badge: str, records: list[Record], *, issued_on: date = TODAY
) -> list[str]:
    """What the hub would have published for ``badge``: access to pt-1 and every current credential."""
    then = issuing.midnight(issued_on)
    found = [
        issuing.from_standing(
            s, subject=badge, now=then, lifetime=timedelta(days=365), issuer_key_id=issuer.key_id
        )
        for s in standings(records, today=issued_on)
        if s.current
    ]
    found.append(
        issuing.new_credential(
            subject=badge,
            kind=Kind.ACCESS,
            scope={"station": "pt-1"},
            now=then,
            expires_at=then + timedelta(days=365),
            issuer_key_id=issuer.key_id,
        )
    )
    return [tokens.sign(c, issuer) for c in found]


def pt_inspector(level: str = "2", near_vision_months_ago: int = 4) -> list[Record]:
    return [
        *certified("PT", level, add_months(TODAY, -36)),
        *eyes(add_months(TODAY, -near_vision_months_ago)),
        performed("PT", add_months(TODAY, -3)),
        performed("PT", TODAY - timedelta(days=7)),
    ]


def station(issuer: SigningKey) -> Verifier:
    return Verifier(keys={issuer.key_id: issuer.verifying}, revocations={})


def test_level_2_pt_inspector_with_current_records_is_admitted_to_operate_the_pt_line(
    issuer: SigningKey,
) -> None:
    held = badge_tokens(issuer, "B-0042", pt_inspector())
    permit = admit(
        "operate", badge="B-0042", tokens=held, verifier=station(issuer), now=NOW, station="pt-1", method="PT"
    )
    assert permit.allowed, permit.reasons
    assert admit(
        "enter_station", badge="B-0042", tokens=held, verifier=station(issuer), now=NOW, station="pt-1"
    ).allowed
    assert not admit(
        "enter_station", badge="B-0042", tokens=held, verifier=station(issuer), now=NOW, station="mt-1"
    ).allowed


def test_inspector_whose_near_vision_exam_is_13_months_old_is_refused_at_pt_station_and_told_why(
    issuer: SigningKey,
) -> None:
    held = badge_tokens(
        issuer, "B-0042", pt_inspector(near_vision_months_ago=13), issued_on=add_months(TODAY, -2)
    )
    permit = admit(
        "operate", badge="B-0042", tokens=held, verifier=station(issuer), now=NOW, station="pt-1", method="PT"
    )
    assert not permit.allowed
    assert any(r.startswith("expired: certified credential") for r in permit.reasons), permit.reasons


def test_trainee_is_admitted_only_with_a_level_2_supervisor_badge_scanned_too(issuer: SigningKey) -> None:
    trainee = badge_tokens(issuer, "B-0100", pt_inspector(level="trainee"))
    supervisor = badge_tokens(issuer, "B-0042", pt_inspector(level="2"))

    def at_pt_1(action: str, supervisor_tokens: list[str] | None = None) -> permits.Permit:
        return admit(
            action,
            badge="B-0100",
            tokens=trainee,
            supervisor_badge="B-0042" if supervisor_tokens else None,
            supervisor_tokens=supervisor_tokens or (),
            verifier=station(issuer),
            now=NOW,
            station="pt-1",
            method="PT",
        )

    alone = at_pt_1("operate")
    assert not alone.allowed and "supervisor" in alone.reasons[0]
    together = at_pt_1("operate", supervisor)
    assert together.allowed, together.reasons
    assert not at_pt_1("sign_acceptance", supervisor).allowed


def test_tokens_of_another_badge_do_not_admit_the_badge_scanned(issuer: SigningKey) -> None:
    someone_elses = badge_tokens(issuer, "B-0042", pt_inspector())
    permit = admit(
        "operate",
        badge="B-0666",
        tokens=someone_elses,
        verifier=station(issuer),
        now=NOW,
        station="pt-1",
        method="PT",
    )
    assert not permit.allowed and any("belongs to badge B-0042" in r for r in permit.reasons)
