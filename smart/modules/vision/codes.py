"""The shop's codes: what a scanned text means, and whether a part's code fits the PO line it claims.

Every code printed in the shop is a colon-separated text starting with
``SMART``::

    SMART:BADGE:<badge>                               a person (the badge is the credential's subject)
    SMART:TRAVELER:<job>:<operation>                  a job's traveler at one operation
    SMART:PART:<po>:<line>:<part-number>:<serial>     one serialised part of a PO line
    SMART:PPE:<item>                                  a PPE item's tag (gloves, goggles, respirator…)

:func:`parse` turns a text into one of the typed values (:class:`Badge`,
:class:`Traveler`, :class:`Part`, :class:`PpeTag`) or raises
:class:`CodeError` naming what is wrong (not a SMART code, an unknown kind,
which field is missing or empty). :func:`check_part` judges a part's code
against the PO line it names (released, part number, serial, quantity) and
returns every reason it fails, as the rule engine's :class:`engine.Reason`
with ``vision.*`` rule ids. :class:`Scanned` gathers the codes scanned at a
station into the fields a :class:`facts.Event` needs (person, supervisor,
job, step, scan, PPE) and into the station job machine's request bodies.
The contract's own rules (traveler, PPE) still decide; these checks only let
the station say at once why a code does not fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from smart.contracts import engine
from smart.contracts import facts as f

PREFIX: Final = "SMART"

#: Each kind's fields, in order after ``SMART:<KIND>:``.
FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "BADGE": ("badge",),
        "TRAVELER": ("job", "operation"),
        "PART": ("po", "line", "part-number", "serial"),
        "PPE": ("item",),
    }
)


class CodeError(ValueError):
    """A scanned text is not one of the shop's codes; the message says which part of it is wrong."""


@dataclass(frozen=True, slots=True)
class Badge:
    """A person's badge; its id is the subject of the person's credentials (``Event.person``)."""

    badge: str

    @property
    def person(self) -> str:
        return self.badge

    def text(self) -> str:
        return f"{PREFIX}:BADGE:{self.badge}"


@dataclass(frozen=True, slots=True)
class Traveler:
    """A job's traveler, scanned at one of its operations (``Event.job`` and ``Event.step``)."""

    job: str
    operation: str

    def text(self) -> str:
        return f"{PREFIX}:TRAVELER:{self.job}:{self.operation}"


@dataclass(frozen=True, slots=True)
class Part:
    """One serialised part of a PO line."""

    po: str
    line: str
    part: str
    serial: str

    @property
    def po_key(self) -> str:
        """The key of its PO line in ``Facts.po_lines``."""
        return f.po_key(self.po, self.line)

    def scan(self, *, operation: str | None = None) -> f.Scan:
        """The scan the contract's traveler rule judges (the operation comes from the traveler)."""
        return f.Scan(po=self.po, line=self.line, part=self.part, serial=self.serial, operation=operation)

    def text(self) -> str:
        return f"{PREFIX}:PART:{self.po}:{self.line}:{self.part}:{self.serial}"


@dataclass(frozen=True, slots=True)
class PpeTag:
    """The tag on a PPE item: scanning it says the item is worn (``Event.ppe``)."""

    item: str

    def text(self) -> str:
        return f"{PREFIX}:PPE:{self.item}"


Code = Badge | Traveler | Part | PpeTag


def _layout(kind: str) -> str:
    return ":".join((PREFIX, kind, *(f"<{name}>" for name in FIELDS[kind])))


def parse(text: str) -> Code:
    """The code ``text`` stands for; :class:`CodeError` says what is wrong with a text that is none."""
    cleaned = text.strip()
    if not cleaned:
        raise CodeError("empty code: nothing was decoded")
    if any(not ch.isprintable() or ch.isspace() for ch in cleaned):
        raise CodeError(f"code {cleaned!r} contains spaces or control characters")
    parts = cleaned.split(":")
    if parts[0] != PREFIX or len(parts) < 2:
        raise CodeError(f"{cleaned!r} is not a SMART code: expected it to start with '{PREFIX}:<KIND>:'")
    kind, values = parts[1].upper(), parts[2:]
    if kind not in FIELDS:
        expected = ", ".join(FIELDS)
        raise CodeError(f"{cleaned!r}: unknown code kind {parts[1]!r}; expected one of {expected}")
    names = FIELDS[kind]
    if len(values) != len(names):
        missing = names[len(values) :]
        detail = (
            f"{', '.join(missing)} missing"
            if missing
            else f"{len(values) - len(names)} field(s) too many (':' is not allowed inside a field)"
        )
        raise CodeError(f"{cleaned!r} is not a {kind.lower()} code: expected {_layout(kind)}; {detail}")
    empty = [name for name, value in zip(names, values, strict=True) if not value]
    if empty:
        raise CodeError(f"{cleaned!r}: {', '.join(empty)} is empty; expected {_layout(kind)}")
    if kind == "BADGE":
        return Badge(values[0])
    if kind == "TRAVELER":
        return Traveler(values[0], values[1])
    if kind == "PART":
        return Part(values[0], values[1], values[2], values[3])
    return PpeTag(values[0])


def _reason(rule: str, message: str, **values: Any) -> engine.Reason:
    return engine.Reason(f"vision.{rule}", message, MappingProxyType(values))


def check_part(
    scan: Part | f.Scan,
    po_line: f.PoLine | None,
    *,
    counted: Collection[str] = (),
    quantity: int | None = None,
) -> tuple[engine.Reason, ...]:
    """Every reason the part's code does not fit ``po_line``; none means it fits.

    ``counted`` are the serials of this line already scanned at the station
    (a serial counted twice, or more parts than the line's quantity, is
    refused); ``quantity`` defaults to the number of serials on the line.
    A scan carrying the traveler's operation must name one of the line's
    operations.
    """
    if isinstance(scan, Part):
        scan = scan.scan()
    where = f"PO {scan.po} line {scan.line}"
    if po_line is None:
        return (_reason("po-line", f"{where} is unknown at this station", po=scan.po, line=scan.line),)
    if (po_line.po, po_line.line) != (scan.po, scan.line):
        return (
            _reason(
                "po-line",
                f"the part's code names {where}, not PO {po_line.po} line {po_line.line}",
                po=scan.po,
                line=scan.line,
                expected=f.po_key(po_line.po, po_line.line),
            ),
        )
    reasons: list[engine.Reason] = []
    if not po_line.released:
        reasons.append(_reason("released", f"{where} is not released", po=scan.po, line=scan.line))
    if scan.part != po_line.part:
        reasons.append(
            _reason(
                "part-number",
                f"part {scan.part} is not {where}'s part {po_line.part}",
                part=scan.part,
                expected=po_line.part,
            )
        )
    if scan.serial is None or scan.serial not in po_line.serials:
        reasons.append(
            _reason(
                "serial",
                f"serial {scan.serial} is not on {where}",
                serial=scan.serial,
                po=scan.po,
                line=scan.line,
                serials=po_line.serials,
            )
        )
    if scan.operation is not None and scan.operation not in po_line.operations:
        reasons.append(
            _reason(
                "operation",
                f"{where}'s traveler has no {scan.operation} operation",
                operation=scan.operation,
                operations=po_line.operations,
            )
        )
    allowed = len(po_line.serials) if quantity is None else quantity
    if scan.serial is not None and scan.serial in counted:
        reasons.append(
            _reason("quantity", f"serial {scan.serial} of {where} was already counted", serial=scan.serial)
        )
    elif len(counted) + 1 > allowed:
        reasons.append(
            _reason(
                "quantity",
                f"{where} has {allowed} part(s); this would be part {len(counted) + 1}",
                quantity=allowed,
                counted=len(counted),
            )
        )
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class Scanned:
    """What the codes scanned at a station so far say, ready for an :class:`facts.Event`.

    The first badge is the operator's; a different badge scanned while an
    operator is badged in is the supervisor's (a trainee works only under
    one). A traveler sets the job and its operation; a part's code the scan
    (with the traveler's operation once both are in); each PPE tag adds its
    item. :meth:`add` returns the new state; nothing here decides.
    """

    person: str | None = None
    supervisor: str | None = None
    job: str | None = None
    operation: str | None = None
    part: Part | None = None
    ppe: frozenset[str] = frozenset()

    def add(self, code: Code) -> Scanned:
        if isinstance(code, Badge):
            if self.person is None:
                return dataclasses.replace(self, person=code.person)
            if code.person != self.person:
                return dataclasses.replace(self, supervisor=code.person)
            return self
        if isinstance(code, Traveler):
            return dataclasses.replace(self, job=code.job, operation=code.operation)
        if isinstance(code, Part):
            return dataclasses.replace(self, part=code)
        return dataclasses.replace(self, ppe=self.ppe | {code.item})

    @property
    def scan(self) -> f.Scan | None:
        return self.part.scan(operation=self.operation) if self.part is not None else None

    def event(self, *, action: str, at: datetime, station: str) -> f.Event:
        """The event the Gatekeeper (and Safety, for the PPE) judges, from what was scanned."""
        return f.Event(
            action=action,
            at=at,
            station=station,
            person=self.person,
            supervisor=self.supervisor,
            job=self.job,
            step=self.operation,
            ppe=self.ppe,
            scan=self.scan,
        )

    def badge_request(self) -> dict[str, Any] | None:
        """The body of the station job machine's ``badge`` verb, once someone badged in."""
        if self.person is None:
            return None
        body: dict[str, Any] = {"person": self.person}
        if self.supervisor is not None:
            body["supervisor"] = self.supervisor
        return body

    def scan_request(self) -> dict[str, Any] | None:
        """The body of the job machine's ``scan`` verb, once both the traveler and a part are in."""
        scan = self.scan
        if self.job is None or scan is None:
            return None
        return {"job": self.job, **{k: v for k, v in dataclasses.asdict(scan).items() if v is not None}}
