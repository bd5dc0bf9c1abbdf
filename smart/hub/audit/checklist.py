"""The checklist questions a job audit packet's items answer, read from ``checklist.yaml`` (data, not code).

The Nadcap checklists are not published, so most question ids are unknown: an
item carries its checklist and topic, and its question id only where the shop
mapped one (else "not mapped"). A broken file is refused with the item at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

CHECKLIST = Path(__file__).with_name("checklist.yaml")
NOT_MAPPED = "not mapped"


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    checklist: str
    question: str | None = None
    topic: str
    domain: list[int] = []


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

    @property
    def label(self) -> str:
        return f"{self.checklist} {self.question or NOT_MAPPED}"


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
        )
    return questions


@lru_cache(maxsize=1)
def questions() -> Mapping[str, Question]:
    """The packaged mapping, read once."""
    return load()
