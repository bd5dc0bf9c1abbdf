"""The spoken questions as a command grammar, so the recogniser hears only what a station answers.

An open-vocabulary recogniser on a Pi, in a shop with compressors and
extraction fans, mishears; a grammar of the questions turns recognition into
picking the closest of a few dozen sentences, which is fast and reliable.
The grammar is built per station: it names the station's own equipment (by
kind and by id, as the floor says them) and, if given, the people who may be
asked about. :func:`jsgf` writes it in JSGF for pocketsphinx; :func:`sentences`
lists every sentence it accepts (vosk takes such a list, and the tests speak
them). The wake word, "hey smart", is optional in the grammar so that speech
without it is heard as such and :func:`~.questions.parse` can refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from smart.modules.node_query import questions

NAME = "smart"

STATUS = ("what is the station status", "station status", "what is the status")
REFUSED = ("why was the last operation refused", "why was i refused", "why was the operation refused")
MY_CERTIFICATION = ("when is my certification due", "when is my certification expiring")
JOB = ("what is the current job", "what job is this", "current job")
REVISION = ("which contract revision is active", "what is the contract revision", "contract revision")

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def say(name: str, *, known: Callable[[str], bool]) -> str | None:
    """How a person says an equipment id or kind (``UV-METER-1`` → ``uv meter one``), if the words are known.

    A word the recogniser's dictionary knows is said as it is; any other is spelt out letter by
    letter; digits are said one by one. None when even the letters are unknown.
    """
    words: list[str] = []
    for part in re.split(r"[-_\s/]+", name.lower()):
        if not part:
            continue
        for piece in re.findall(r"[a-z]+|[0-9]+", part):
            if piece.isdigit():
                words.extend(_DIGITS[int(d)] for d in piece)
            elif known(piece):
                words.append(piece)
            elif all(known(letter) for letter in piece):
                words.extend(piece)
            else:
                return None
    return " ".join(words) or None


def calibration_sentences(equipment: str) -> tuple[str, ...]:
    return (f"when is the {equipment} calibration due", f"when is {equipment} calibration due")


def certification_sentences(person: str) -> tuple[str, ...]:
    return (f"when is the certification of {person} due", f"when is {person} certification due")


def sentences(*, equipment: Sequence[str] = (), people: Sequence[str] = ()) -> list[str]:
    """Every question sentence the grammar accepts (without the wake word)."""
    said = [*STATUS, *REFUSED, *MY_CERTIFICATION, *JOB, *REVISION]
    for person in people:
        said.extend(certification_sentences(person))
    for name in equipment:
        said.extend(calibration_sentences(name))
    return said


def _alternatives(phrases: Iterable[str]) -> str:
    unique = list(dict.fromkeys(p.strip().lower() for p in phrases if p.strip()))
    return " | ".join(unique)


def jsgf(*, equipment: Sequence[str] = (), people: Sequence[str] = ()) -> str:
    """The JSGF grammar of the questions, naming ``equipment`` and ``people`` as they are said."""
    lines = [
        "#JSGF V1.0;",
        f"grammar {NAME};",
        f"public <utterance> = [{questions.WAKE_WORD}] <question>;",
    ]
    rules = ["<status>", "<refused>", "<certification>", "<job>", "<revision>"]
    if equipment:
        rules.append("<calibration>")
    lines.append(f"<question> = {' | '.join(rules)};")
    lines.append(f"<status> = {_alternatives(STATUS)};")
    lines.append(f"<refused> = {_alternatives(REFUSED)};")
    certification = list(MY_CERTIFICATION)
    if people:
        certification += [
            "when is the certification of <person> due",
            "when is <person> certification due",
        ]
        lines.append(f"<person> = {_alternatives(people)};")
    lines.append(f"<certification> = {_alternatives(certification)};")
    if equipment:
        lines.append(
            "<calibration> = when is the <equipment> calibration due | when is <equipment> calibration due;"
        )
        lines.append(f"<equipment> = {_alternatives(equipment)};")
    lines.append(f"<job> = {_alternatives(JOB)};")
    lines.append(f"<revision> = {_alternatives(REVISION)};")
    return "\n".join(lines) + "\n"
