"""Personnel records as the hub keeps them: certifications, exams, eye exams, performance, courses.

One record shape serves every kind, because the schemes (data) decide what a
record means: a scheme's currency rule names the record kinds it counts and,
where it matters, the method or the eye-exam test. Records are facts with a
date; whether they make a credential current is decided by derivation.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType


class RecordKind(enum.StrEnum):
    CERTIFICATION = "certification"  # a Level 3 certified the person in a method at a level
    EXAM = "exam"  # a written or practical exam result (general, specific, practical)
    EYE_EXAM = "eye_exam"  # near-vision or colour-vision exam, with the test used
    PERFORMANCE = "performance"  # the person performed the method (from the ledger)
    EXPERIENCE = "experience"  # documented hours in a method
    COURSE = "course"  # a training or safety course completed


@dataclass(frozen=True, slots=True)
class Record:
    kind: RecordKind
    on: date
    method: str | None = None
    level: str | None = None
    scheme: str | None = None
    technique: str | None = None
    exam: str | None = None
    score: float | None = None
    samples: int | None = None
    test: str | None = None
    test_type: str | None = None
    course: str | None = None
    hours: float | None = None
    record_id: str | None = None
    detail: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def describe(self) -> str:
        what = [self.kind.value]
        for part in (self.method, self.level and f"level {self.level}", self.exam, self.test, self.course):
            if part:
                what.append(str(part))
        return f"{' '.join(what)} of {self.on.isoformat()}"
