"""The checklist questions a job audit packet's items answer, read from ``checklist.yaml`` (data, not code).

The Nadcap checklists are sold, not published, so question ids are unknown
here: an item carries its checklist and topic, and a question id only where the
shop mapped one from its own copy, with that copy's revision and where it came
from (else "not mapped"): question numbers move between revisions, so an id
without its revision is no claim an auditor can check. A broken file is refused
with the item at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

CHECKLIST = Path(__file__).with_name("checklist.yaml")
NOT_MAPPED = "not mapped"


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    checklist: str
    question: str | None = None
    #: The checklist revision the question id was read from ("Rev P"), and whose copy it was.
    revision: str | None = None
    source: str | None = None
    topic: str
    domain: list[int] = []

    @model_validator(mode="after")
    def _an_id_names_its_revision(self) -> _Item:
        if self.question is not None and not (self.revision and self.source):
            raise ValueError("a question id needs the checklist revision and source it was read from")
        if self.question is None and (self.revision or self.source):
            raise ValueError("revision and source belong to a question id; none is given")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    checklists: dict[str, str]
    items: dict[str, _Item]


class ChecklistError(ValueError):
    """The checklist mapping file is not what the packet needs; the message names the file and item."""


@dataclass(frozen=True, slots=True)
class Question:
    """What one packet item answers: the checklist, its question id (or "not mapped") and the topic."""

    item: str
    checklist: str
    checklist_title: str
    question: str | None
    topic: str
    domain: tuple[int, ...]
    revision: str | None = None
    source: str | None = None

    @property
    def label(self) -> str:
        if self.question is None:
            return f"{self.checklist} {NOT_MAPPED}"
        return f"{self.checklist} {self.revision} {self.question}"


def load(path: Path = CHECKLIST) -> Mapping[str, Question]:
    try:
        parsed = _File.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as err:
        raise ChecklistError(f"{path}: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ChecklistError(f"{path}: {where}: {first['msg']}") from err
    questions: dict[str, Question] = {}
    for name, item in parsed.items.items():
        if item.checklist not in parsed.checklists:
            raise ChecklistError(f"{path}: items.{name}.checklist: {item.checklist!r} is not in checklists")
        questions[name] = Question(
            name,
            item.checklist,
            parsed.checklists[item.checklist],
            item.question,
            item.topic,
            tuple(item.domain),
            item.revision,
            item.source,
        )
    return questions


@lru_cache(maxsize=1)
def questions() -> Mapping[str, Question]:
    """The packaged mapping, read once."""
    return load()
