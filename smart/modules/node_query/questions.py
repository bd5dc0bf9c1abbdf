"""The questions a station answers, read from what a person typed or what the recogniser heard.

A station answers a small, fixed set of questions, all from its own store:
the station's status, why the last operation was refused, when a
certification (the asker's, or a named person's) is due, when a piece of
equipment's calibration is due, the job in hand, and which contract revisions
are active. :func:`parse` turns a sentence into a typed :class:`Question`,
or into :class:`NotUnderstood` that says why and what may be asked.

By voice a question starts with the wake word, "Hey SMART"; typed into the
kiosk it may (``wake_word=False``). Equipment is named as the floor names
it, by id or by kind ("UV-METER-1", "the light meter", or spoken "u v meter
one"); :func:`spoken_key` reduces typed and spoken forms to the same key so
the answer can find the equipment in the station's facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Topic = Literal[
    "station-status",
    "why-refused",
    "certification-due",
    "calibration-due",
    "current-job",
    "contract-revision",
]

WAKE_WORD = "hey smart"
#: How the recogniser or a keyboard may spell the wake word.
_WAKE = re.compile(r"^\s*(hey|hi|ok|okay)[\s,]+smart\b[\s,.!:;-]*", re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+(?:['’\-_][a-z0-9]+)*")

_NUMBERS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_FILLER = {"the", "a", "an", "this", "that", "station's", "stations"}
_SELF = {"my", "i", "me", "mine", "our"}

#: What the person may ask, for the "I did not understand" answer and the kiosk's hint.
EXAMPLES: tuple[str, ...] = (
    "what is the station status",
    "why was the last operation refused",
    "when is my certification due",
    "when is the light meter calibration due",
    "what is the current job",
    "which contract revision is active",
)


@dataclass(frozen=True, slots=True)
class Question:
    """One understood question; ``person`` None means the asker's own badge."""

    topic: Topic
    text: str
    person: str | None = None
    equipment: str | None = None


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    """A sentence that is not one of the station's questions, and why."""

    text: str
    reason: str

    @property
    def message(self) -> str:
        return f"I did not understand {self.reason}. You can ask: {'; '.join(EXAMPLES)}."


def strip_wake_word(text: str) -> str | None:
    """``text`` without its leading wake word, or None when it does not start with one."""
    match = _WAKE.match(text)
    return None if match is None else text[match.end() :]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


def spoken_key(text: str) -> str:
    """One key for a typed or spoken name: ``UV-METER-1`` and ``u v meter one`` both give ``uvmeter1``.

    Words split on hyphens, number words become digits, articles drop out, and what is left is
    joined with no spaces, so spelt-out letters ("u v a") and a word ("uva") meet.
    """
    parts: list[str] = []
    for token in tokens(text):
        for part in re.split(r"[-_']", token):
            if part and part not in _FILLER:
                parts.append(_NUMBERS.get(part, part))
    return "".join(parts)


def parse(text: str, *, wake_word: bool = False) -> Question | NotUnderstood:
    """The question in ``text``; with ``wake_word`` it must start with "Hey SMART" (voice)."""
    rest = strip_wake_word(text)
    if rest is None:
        if wake_word:
            return NotUnderstood(text, 'that: a question starts with "Hey SMART"')
        rest = text
    words = tokens(rest)
    if not words:
        return NotUnderstood(text, "a question: nothing was said after the wake word")
    said = " ".join(words)
    if any(w.startswith("calibrat") for w in words):
        equipment = _calibration_subject(words)
        if not equipment:
            return NotUnderstood(text, "which equipment: name it, e.g. 'the light meter'")
        return Question("calibration-due", text, equipment=equipment)
    if any(w.startswith(("certif", "cert", "qualif", "recert")) for w in words):
        return Question("certification-due", text, person=_certification_subject(words))
    if any(w.startswith(("refus", "denied", "deny", "block", "reject", "stopped")) for w in words) or (
        "why" in words and ("last" in words or "not" in words or "no" in words)
    ):
        return Question("why-refused", text)
    if "job" in words or "traveler" in words or "jobs" in words or "working on" in said:
        return Question("current-job", text)
    if any(w.startswith(("revision", "contract")) for w in words):
        return Question("contract-revision", text)
    if "status" in words or "state" in words or said in {"how are we", "how is the station"}:
        return Question("station-status", text)
    return NotUnderstood(text, f"{said!r}")


def _between(words: list[str], starts: set[str], stop: int) -> list[str]:
    """The words after the last of ``starts`` before index ``stop`` (none when no start word)."""
    begin = None
    for index in range(stop):
        if words[index] in starts:
            begin = index + 1
    return [] if begin is None else [w for w in words[begin:stop] if w not in _FILLER]


def _calibration_subject(words: list[str]) -> str | None:
    at = next(i for i, w in enumerate(words) if w.startswith("calibrat"))
    after = words[at + 1 :]
    if after and after[0] in {"of", "for"}:  # "calibration of the light meter"
        subject = [w for w in after[1:] if w not in _FILLER and w not in {"due", "next", "expire", "expires"}]
        return " ".join(subject) or None
    subject = _between(words, {"is", "are", "was", "does", "did"}, at) or _between(words, {"for", "of"}, at)
    while subject and subject[-1] in {"due", "for", "next", "its", "their"}:
        subject = subject[:-1]
    return " ".join(subject) or None


def _certification_subject(words: list[str]) -> str | None:
    if any(w in _SELF for w in words):
        return None
    at = next(i for i, w in enumerate(words) if w.startswith(("certif", "cert", "qualif", "recert")))
    after = words[at + 1 :]
    if after and after[0] in {"of", "for"}:
        subject = [w for w in after[1:] if w not in _FILLER and w != "due"]
    else:
        subject = _between(words, {"is", "are", "does", "when"}, at)
    if not subject:
        return None
    name = " ".join(subject)
    return re.sub(r"'s?$", "", name)
