"""NAS410/EN4179 decided from records: eye exams, recertification, lapse per method, trainees, courses."""

from __future__ import annotations

from datetime import date, timedelta

from smart.access import Credential, Kind, Reason, Refusal, Verifier, issuing, permits, tokens
from smart.access.derive import Standing, Status, standings
from smart.access.records import Record, RecordKind
from smart.intervals import add_months
from smart.keys import SigningKey
from tests.access.conftest import NOW

TODAY = NOW.date()


def certified(method: str, level: str, on: date, *, samples: int = 2, scheme: str = "NAS410") -> list[Record]:
    """A certification with the exams that back it, taken a month before."""
    exams_on = on - timedelta(days=30)
    return [
        Record(RecordKind.EXAM, exams_on, method=method, exam="general", score=84),
        Record(RecordKind.EXAM, exams_on, method=method, exam="specific", score=80),
        Record(RecordKind.EXAM, exams_on, method=method, exam="practical", score=91, samples=samples),
        Record(RecordKind.CERTIFICATION, on, method=method, level=level, scheme=scheme),
    ]


def eyes(
    near_on: date, *, colour_on: date | None = None, test_type: str | None = "jaeger-1-at-12in"
) -> list[Record]:
    return [
        Record(RecordKind.EYE_EXAM, near_on, test="near_vision", test_type=test_type),
        Record(
            RecordKind.EYE_EXAM, colour_on or date(2024, 1, 10), test="colour_vision", test_type="ishihara"
        ),
    ]


def performed(method: str, on: date) -> Record:
    return Record(RecordKind.PERFORMANCE, on, method=method)


def inspector(*, near_vision_months_ago: int = 4, pt_performed: date | None = None) -> list[Record]:
    """The walked-through job's inspector: Level 2 PT, certified 3 years ago, performed PT last week."""
    return [
        *certified("PT", "2", add_months(TODAY, -36)),
        *eyes(add_months(TODAY, -near_vision_months_ago)),
        performed("PT", add_months(TODAY, -3)),
        performed("PT", pt_performed or TODAY - timedelta(days=7)),
    ]


def standing(records: list[Record], method: str, today: date = TODAY) -> Standing:
    found = [s for s in standings(records, today=today) if s.scope.get("method") == method]
    assert len(found) == 1, found
    return found[0]


def test_level_2_pt_inspector_with_current_records_holds_a_current_certified_credential() -> None:
    pt = standing(inspector(), "PT")
    assert pt.status is Status.CURRENT, pt.reasons
    assert dict(pt.scope) == {"method": "PT", "level": "2", "scheme": "NAS410"}
    assert pt.valid_until == add_months(add_months(TODAY, -4), 12)  # the near-vision exam falls due first


def test_level_2_pt_inspector_whose_near_vision_exam_is_13_months_old_is_refused_at_pt_station(
    issuer: SigningKey,
) -> None:
    # The hub issued the credential while the eye exam was current (two months ago) ...
    issued_on = add_months(TODAY, -2)
    then = issuing.midnight(issued_on)
    records = inspector(near_vision_months_ago=13)
    before = standing(records, "PT", today=issued_on)
    assert before.current, before.reasons
    credential = issuing.from_standing(
        before, subject="B-0042", now=then, lifetime=timedelta(days=365), issuer_key_id=issuer.key_id
    )
    token = tokens.sign(credential, issuer)
    # ... the station, with no word from the hub since, refuses it once the exam is 12 months old ...
    station = Verifier(keys={issuer.key_id: issuer.verifying}, revocations={})
    outcome = station.verify(token, now=NOW, station="pt-1")
    assert isinstance(outcome, Refusal) and outcome.reason is Reason.EXPIRED
    # ... and the hub's derivation says why, and will not issue a new one.
    now = standing(records, "PT")
    assert now.status is Status.SUSPENDED
    assert any("near-vision exam" in r for r in now.reasons), now.reasons


def test_inspector_who_has_not_performed_ut_for_13_months_lapses_for_ut_only() -> None:
    records = [
        *inspector(),
        *certified("UT", "2", add_months(TODAY, -30)),
        performed("UT", add_months(TODAY, -13)),
    ]
    assert standing(records, "UT").status is Status.LAPSED
    assert any("performance of the method" in r for r in standing(records, "UT").reasons)
    assert standing(records, "PT").status is Status.CURRENT


def test_trainee_may_not_sign_acceptance(issue: object) -> None:
    trainee = _credential(Kind.CERTIFIED, {"method": "PT", "level": "trainee", "scheme": "NAS410"})
    permit = permits.authorise("sign_acceptance", presented=[trainee], station="pt-1", method="PT")
    assert not permit.allowed
    assert "level ≥ 1" in permit.reasons[0]


def test_trainee_without_a_supervisor_badge_may_not_operate_and_with_a_level_2_supervisor_may() -> None:
    trainee = _credential(Kind.CERTIFIED, {"method": "PT", "level": "trainee", "scheme": "NAS410"})
    alone = permits.authorise("operate", presented=[trainee], station="pt-1", method="PT")
    assert not alone.allowed and "supervisor" in alone.reasons[0]
    ut_level_2 = _credential(Kind.CERTIFIED, {"method": "UT", "level": "2", "scheme": "NAS410"})
    wrong_method = permits.authorise(
        "operate", presented=[trainee], supervisor=[ut_level_2], station="pt-1", method="PT"
    )
    assert not wrong_method.allowed
    pt_level_2 = _credential(Kind.CERTIFIED, {"method": "PT", "level": "2", "scheme": "NAS410"})
    supervised = permits.authorise(
        "operate", presented=[trainee], supervisor=[pt_level_2], station="pt-1", method="PT"
    )
    assert supervised.allowed and supervised.credential_ids == (
        trainee.credential_id,
        pt_level_2.credential_id,
    )


def test_trainee_supervised_by_a_pt_instructor_may_operate() -> None:
    trainee = _credential(Kind.CERTIFIED, {"method": "PT", "level": "trainee", "scheme": "NAS410"})
    instructor = _credential(
        Kind.TRAINING, {"course": "ndt-instructor-pt", "method": "PT", "role": "instructor"}
    )
    assert permits.authorise(
        "operate", presented=[trainee], supervisor=[instructor], station="pt-1", method="PT"
    ).allowed


def test_level_1_under_en4179_may_sign_acceptance_but_not_approve_a_procedure() -> None:
    level_1 = _credential(Kind.CERTIFIED, {"method": "MT", "level": "1", "scheme": "EN4179"})
    assert permits.authorise("sign_acceptance", presented=[level_1], station="mt-1", method="MT").allowed
    assert not permits.authorise(
        "approve_procedure", presented=[level_1], station="mt-1", method="MT"
    ).allowed


def test_level_2_pt_certification_does_not_let_its_holder_sign_mt_acceptance() -> None:
    pt = _credential(Kind.CERTIFIED, {"method": "PT", "level": "2", "scheme": "NAS410"})
    assert not permits.authorise("sign_acceptance", presented=[pt], station="mt-1", method="MT").allowed


def test_certification_five_years_old_has_expired_until_recertified() -> None:
    records = [
        *certified("PT", "2", add_months(TODAY, -61)),
        *eyes(add_months(TODAY, -1)),
        performed("PT", TODAY),
    ]
    assert standing(records, "PT").status is Status.EXPIRED
    recertified = [*records, *certified("PT", "2", TODAY - timedelta(days=3))]
    assert standing(recertified, "PT").status is Status.CURRENT


def test_rehire_paperwork_without_new_exams_does_not_reinstate_an_expired_certification() -> None:
    old = certified("PT", "2", add_months(TODAY, -70))
    rehire = Record(
        RecordKind.CERTIFICATION, TODAY - timedelta(days=3), method="PT", level="2", scheme="NAS410"
    )
    records = [*old, rehire, *eyes(add_months(TODAY, -1)), performed("PT", TODAY)]
    pt = standing(records, "PT")
    assert pt.status is Status.NOT_CERTIFIED
    assert any("general exam" in r for r in pt.reasons)


def test_level_2_practical_exam_on_a_single_sample_does_not_certify() -> None:
    records = [*certified("PT", "2", add_months(TODAY, -3), samples=1), *eyes(add_months(TODAY, -1))]
    pt = standing(records, "PT")
    assert pt.status is Status.NOT_CERTIFIED and any("≥ 2 samples" in r for r in pt.reasons)


def test_vision_record_that_does_not_say_which_test_was_used_does_not_count() -> None:
    records = [*certified("PT", "2", add_months(TODAY, -12)), *eyes(add_months(TODAY, -2), test_type=None)]
    pt = standing(records, "PT")
    assert pt.status is Status.SUSPENDED and any("accepted test" in r for r in pt.reasons)


def test_colour_contrast_exam_older_than_five_years_suspends_the_certification() -> None:
    records = [
        *certified("PT", "2", add_months(TODAY, -12)),
        *eyes(add_months(TODAY, -2), colour_on=add_months(TODAY, -61)),
    ]
    assert standing(records, "PT").status is Status.SUSPENDED


def test_certification_is_judged_as_it_stood_on_the_day_of_the_work() -> None:
    records = inspector(near_vision_months_ago=13)
    day_of_work = add_months(TODAY, -3)
    assert standing(records, "PT", today=day_of_work).status is Status.CURRENT
    assert standing(records, "PT").status is Status.SUSPENDED


def test_completed_uv_safety_course_grants_a_safety_credential_for_a_year() -> None:
    done = Record(RecordKind.COURSE, add_months(TODAY, -2), course="uv-safety")
    (safety,) = standings([done], today=TODAY)
    assert safety.kind is Kind.SAFETY and safety.current and dict(safety.scope) == {"course": "uv-safety"}
    (stale,) = standings([done], today=add_months(TODAY, 11))
    assert stale.status is Status.EXPIRED


def _credential(kind: Kind, scope: dict[str, str]) -> Credential:
    return issuing.new_credential(
        subject="B-0007",
        kind=kind,
        scope=scope,
        now=NOW,
        expires_at=NOW + timedelta(days=30),
        issuer_key_id="k",
    )
