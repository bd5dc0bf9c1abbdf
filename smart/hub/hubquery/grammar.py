"""The hub's spoken questions as a command grammar, so the recogniser hears only what a hub answers.

The station's NodeQuery does the same (``smart.modules.node_query.grammar``):
an open-vocabulary recogniser mishears in a shop, a grammar of a few dozen
sentences turns recognition into picking the closest one. The hub grammar
holds every hub's questions, not only the asked hub's: a question for
another hub is then heard as it was said and answered "the Vault hub answers
that", rather than forced onto one of this hub's. PO numbers are said digit
by digit after "p o" ("status of p o four four one one"); :func:`typed`
turns what was heard back into the typed form the answers read ("status of
po 4411").

A grammar alone forces whatever is said onto the nearest sentence, so it
also holds a loop of common words that appear in no question (:data:`OTHER`,
the station's set less the hub's own words): speech that is not a question
ends up there and is answered "not understood", never guessed
(:func:`is_other`). The wake word is optional: an uploaded recording is a
deliberate question, not a microphone left listening.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

NAME = "hubquery"
WAKE_WORD = "hey smart"

EYE_EXAMS = (
    "who is due for an eye exam this month",
    "who is due for an eye exam",
    "whose eye exam is due this month",
    "which eye exams are due this month",
)
PO_STATUS = ("status of p o <number>", "what is the status of p o <number>", "where is p o <number>")
GAUGES = (
    "which gauges are overdue",
    "which gauges are overdue for calibration",
    "what equipment is overdue",
    "which equipment is overdue for calibration",
)

#: Common words in no question (the station's loop): a loop of them absorbs speech that is no question.
OTHER = ("about", "after", "again", "all", "also", "always", "am", "an", "and", "any", "around", "as")

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SAID_DIGIT = {word: str(n) for n, word in enumerate(DIGITS)} | {"oh": "0"}


def vocabulary() -> set[str]:
    said = " ".join((*EYE_EXAMS, *PO_STATUS, *GAUGES, WAKE_WORD, *DIGITS, "oh")).replace("<number>", "")
    return set(said.split())


def other_words() -> tuple[str, ...]:
    """The loop's words: :data:`OTHER` less any word a question uses ("an eye exam")."""
    used = vocabulary()
    return tuple(word for word in OTHER if word not in used)


def sentences(po_numbers: Sequence[str] = ()) -> list[str]:
    """Every question sentence the grammar accepts (without the wake word)."""
    said = [*EYE_EXAMS, *GAUGES]
    for po in po_numbers:
        if number := said_number(po):
            said.extend(s.replace("<number>", number) for s in PO_STATUS)
    return said


def said_number(po: str) -> str | None:
    """How a PO is said: ``PO-4411`` or ``4411`` as "four four one one"; None for a code with letters."""
    digits = po.upper().removeprefix("PO").lstrip("-_ ")
    if not digits.isdigit():
        return None
    return " ".join(DIGITS[int(d)] for d in digits)


def _rule_number(said: str) -> str:
    """A said number as a JSGF sequence, zero said either way ("one oh oh one")."""
    return " ".join("(zero | oh)" if word == "zero" else word for word in said.split())


def jsgf(po_numbers: Sequence[str] = ()) -> str:
    """The JSGF grammar of the hub questions, naming the hub's own POs (``po_numbers``) as they are said.

    A free loop of digits heard "turn on the lights" as "where is p o nine three" in our espeak-ng
    trials: the numbers are the POs the hub holds, as the station's grammar names its own
    equipment. With none, the PO question is not in the grammar.
    """

    def alternatives(phrases: Iterable[str]) -> str:
        return " | ".join(dict.fromkeys(phrases))

    numbers = [n for po in po_numbers if (n := said_number(po))]
    questions = ["<eye>", "<gauges>"] + (["<po>"] if numbers else [])
    lines = [
        "#JSGF V1.0;",
        f"grammar {NAME};",
        f"public <utterance> = [{WAKE_WORD}] <question> | <other>;",
        f"<other> = ({' | '.join(other_words())})+;",
        f"<question> = {' | '.join(questions)};",
        f"<eye> = {alternatives(EYE_EXAMS)};",
        f"<gauges> = {alternatives(GAUGES)};",
    ]
    if numbers:
        lines.append(f"<po> = {alternatives(PO_STATUS)};")
        lines.append(f"<number> = {alternatives(_rule_number(n) for n in numbers)};")
    return "\n".join(lines) + "\n"


def is_other(heard: str) -> bool:
    """Whether the recogniser's words came through the loop of other speech, not a question."""
    loop = set(other_words())
    return any(word in loop for word in heard.split())


def typed(heard: str) -> str:
    """What was heard in the typed form: no wake word, "p o" as "po", said digits as one number."""
    words = heard.lower().split()
    if words[:2] == WAKE_WORD.split():
        words = words[2:]
    out: list[str] = []
    for word in words:
        if word in _SAID_DIGIT and out and re.fullmatch(r"po|\d+", out[-1]):
            if out[-1] == "po":
                out.append(_SAID_DIGIT[word])
            else:
                out[-1] += _SAID_DIGIT[word]
        elif word == "o" and out and out[-1] == "p":
            out[-1] = "po"
        else:
            out.append(word)
    return " ".join(out)
