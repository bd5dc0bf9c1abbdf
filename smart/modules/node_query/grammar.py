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

A grammar alone forces whatever is said onto the nearest question ("hey
smart, open the pod bay doors" came out as "what is the current job"). So
the grammar also holds a loop of a few common words that appear in no
question (:data:`OTHER`): other speech ends up there and is reported as
not a question (:func:`is_other`). The twelve words were chosen by trial
on espeak-ng speech in three voices: every question of the grammar was
still heard right (72/72) and 19 of 21 other sentences were refused (3 of
7 in one voice without the loop); longer loops refused a little more but
took a question for other speech, and cost four times the decoding time.
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

#: Common words in no question: a loop of them absorbs speech that is not a question.
OTHER = ("about", "after", "again", "all", "also", "always", "am", "an", "and", "any", "around", "as")

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


def is_other(heard: str) -> bool:
    """Whether the recogniser's words came through the loop of other speech, not a question."""
    return any(word in OTHER for word in heard.split())


def _alternatives(phrases: Iterable[str]) -> str:
    unique = list(dict.fromkeys(p.strip().lower() for p in phrases if p.strip()))
    return " | ".join(unique)


def jsgf(*, equipment: Sequence[str] = (), people: Sequence[str] = ()) -> str:
    """The JSGF grammar of the questions, naming ``equipment`` and ``people`` as they are said."""
    vocabulary = set(" ".join(sentences(equipment=equipment, people=people)).split())
    other = [word for word in OTHER if word not in vocabulary]
    lines = [
        "#JSGF V1.0;",
        f"grammar {NAME};",
        f"public <utterance> = [{questions.WAKE_WORD}] <question> | <other>;",
        f"<other> = ({' | '.join(other)})+;",
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
