"""The worker's certification: method, level, basis, currency, supervisor (rules 1, 5, 6, 8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class SupervisorRequirement(vocabulary.Model):
    """Who must badge in beside a trainee: same method, at least this level, or an instructor."""

    min_level: vocabulary.Level = Field(
        default=vocabulary.Level.LEVEL_2, description="Lowest level a supervisor may hold."
    )
    instructor_allowed: bool = Field(default=True, description="An instructor in the method may supervise.")


class PracticalExam(vocabulary.Model):
    """The Level 2 practical: samples of different configuration (DOMAIN rule 8)."""

    min_samples: int = Field(default=2, ge=1, description="Samples per method.")
    min_per_technique: int = Field(default=1, ge=1, description="Samples per technique.")


class CredentialRule(vocabulary.RuleBase):
    """The operator holds a current certification in the method at or above a level (rules 1, 5, 6, 8)."""

    kind: Literal["credential"] = "credential"
    module: ClassVar[str] = "gatekeeper"

    method: vocabulary.Name = Field(description="NDT method or process, e.g. PT, MT, UT, HT.")
    technique: vocabulary.Name | None = Field(
        default=None, description="Technique the certification must cover."
    )
    min_level: vocabulary.Level = Field(description="Lowest level that may work alone.")
    supervisor: SupervisorRequirement | None = Field(
        default=None, description="When set, a trainee may work only beside such a supervisor."
    )
    recertify_every: vocabulary.IntervalText | None = Field(
        default=None, description="Certification older than this (from issue) is not current."
    )
    lapse_if_not_performed_for: vocabulary.IntervalText | None = Field(
        default=None, description="Certification lapses when the method was not performed this long."
    )
    accepted_basis: list[vocabulary.Name] = Field(
        default_factory=lambda: ["initial-exam", "recertification-exam"],
        description="What a certification may rest on; e.g. never 'rehire' (NAS410 8.4).",
    )
    practical_exam: PracticalExam | None = Field(default=None, description="Practical exam record required.")


def current_certification(
    person: f.Person, method: str, at: datetime, technique: str | None = None
) -> f.Certification | None:
    """The person's highest certification in ``method`` valid at ``at`` (issued, unexpired, unrevoked)."""
    best: f.Certification | None = None
    for cert in person.certifications:
        if cert.method != method or not cert.issued <= at < cert.expires:
            continue
        if cert.revoked and cert.revoked_by(at):  # Certification.valid_at, without a call when unrevoked
            continue
        if technique is not None and technique != cert.technique and technique not in cert.techniques:
            continue
        if best is None or cert.level.rank > best.level.rank:
            best = cert
    return best


#: Why a person does not stand under the rule at a time: the message, the values, and the
#: certification judged (None when they hold no current one).
Shortfall = tuple[str, dict[str, Any], f.Certification | None]


def compile_rule(rule: CredentialRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    method, technique, min_rank = rule.method, rule.technique, rule.min_level.rank
    basis = frozenset(rule.accepted_basis)
    recert = intervals.parse(rule.recertify_every) if rule.recertify_every else None
    lapse = intervals.parse(rule.lapse_if_not_performed_for) if rule.lapse_if_not_performed_for else None
    supervisor, practical, zone = rule.supervisor, rule.practical_exam, ctx.zone
    level_2 = vocabulary.Level.LEVEL_2.rank

    def standing(person: f.Person, at: datetime, technique: str | None) -> f.Certification | Shortfall:
        """Every currency rule of the contract, the same for an operator and for their supervisor."""
        cert = current_certification(person, method, at, technique)
        if cert is None:
            return f"{person.id} holds no current {method} certification", {"method": method}, None
        if cert.basis not in basis:
            return (
                f"{person.id}'s {method} certification rests on {cert.basis}, not an exam",
                {"basis": cert.basis, "accepted": sorted(basis)},
                cert,
            )
        if recert is not None and not intervals.current(cert.issued, recert, at, zone):
            return (
                f"{person.id}'s {method} certification is past recertification ({recert})",
                {"issued": cert.issued, "every": str(recert)},
                cert,
            )
        if lapse is not None:
            last = person.last_performed_by(method, at)
            if last is None or not intervals.current(last, lapse, at, zone):
                return (
                    f"{person.id} has not performed {method} within {lapse}: certification lapsed",
                    {"last_performed": last},
                    cert,
                )
        if practical is not None and cert.level.rank >= level_2:
            if cert.practical_samples < practical.min_samples or any(
                n < practical.min_per_technique for n in cert.practical_samples_per_technique.values()
            ):
                return (
                    f"{person.id}'s practical exam record has too few samples",
                    {"samples": cert.practical_samples, "required": practical.min_samples},
                    cert,
                )
        return cert

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        at = event.at
        person = facts.people.get(event.person) if event.person else None
        if person is None:
            return fail(f"no known operator badged in for {method}", person=event.person)
        cert = standing(person, at, technique)
        if isinstance(cert, tuple):
            why, values, _ = cert
            return fail(why, person=person.id, **values)
        if cert.level.rank >= min_rank:
            return None
        if cert.level is vocabulary.Level.TRAINEE and supervisor is not None:
            wanted = f"{supervisor.min_level.value}+ {method}" + (
                " or instructor" if supervisor.instructor_allowed else ""
            )
            boss = facts.people.get(event.supervisor) if event.supervisor else None
            if boss is None or boss.id == person.id:
                return fail(
                    f"trainee {person.id} needs a supervisor's badge ({wanted})",
                    person=person.id,
                    supervisor=event.supervisor,
                    supervisor_level=None,
                )
            boss_cert = standing(boss, at, None)
            if isinstance(boss_cert, tuple):
                boss_why, boss_values, judged = boss_cert
                return fail(
                    f"trainee {person.id}'s supervisor does not qualify: {boss_why}",
                    person=person.id,
                    supervisor=boss.id,
                    supervisor_level=judged.level if judged else None,
                    **{f"supervisor_{key}": value for key, value in boss_values.items()},
                )
            if boss_cert.level.rank >= supervisor.min_level.rank or (
                supervisor.instructor_allowed and boss_cert.instructor
            ):
                return None
            return fail(
                f"trainee {person.id} needs a supervisor's badge ({wanted}); {boss.id} is "
                f"{boss_cert.level.value}",
                person=person.id,
                supervisor=boss.id,
                supervisor_level=boss_cert.level,
            )
        return fail(
            f"{person.id} is {cert.level.value} in {method}; {rule.min_level.value} required",
            person=person.id,
            level=cert.level,
            required=rule.min_level,
        )

    return check


FAMILY = judging.Family(CredentialRule, compile_rule)
