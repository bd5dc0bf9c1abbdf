"""Import calibrations from the lab's or the shop's spreadsheet (CSV, or XLSX through openpyxl).

Shops receive certificates in batches and keep a log of them; this takes the
log in. The first row names the columns: ``asset_id, calibrated_at, lab,
certificate_number, traceability, in_tolerance`` (required) and
``as_found, as_left, next_due``. ``calibrated_at`` is an ISO date-time with
its offset, or a date / a spreadsheet date cell read as noon in the shop's
time zone (a certificate gives a day, not an hour); ``in_tolerance`` is
``yes``/``no`` (or true/false, 1/0). Every asset must already be in the
register, and a calibration of a kind no contract calibrates must give
``next_due``: the same rules as one calibration entered by hand.

:func:`check` lists every problem with the file name, row (header = 1),
column and field; :func:`run` writes only a file with none, in one
transaction (an out-of-tolerance row opens its recall in it), and a dry
run (the default) writes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Any

from pydantic import ValidationError

from smart.hub import spreadsheets
from smart.hub.clients.models import Problem
from smart.hub.maintenance.importing import _blank, _cells, _text
from smart.hub.maintenance.models import CalibrationIn
from smart.hub.maintenance.store import MaintenanceHub

COLUMNS = (
    "asset_id",
    "calibrated_at",
    "lab",
    "certificate_number",
    "traceability",
    "in_tolerance",
    "as_found",
    "as_left",
    "next_due",
)
REQUIRED = ("asset_id", "calibrated_at", "lab", "certificate_number", "traceability", "in_tolerance")
_YES = {"yes", "y", "true", "1", "in"}
_NO = {"no", "n", "false", "0", "out"}
#: The hour a certificate's day is read at (the middle of the day: the date stays the date in any zone).
NOON = time(12, 0)


@dataclass(frozen=True, slots=True)
class Checked:
    rows: int
    problems: tuple[Problem, ...]
    calibrations: tuple[tuple[str, CalibrationIn], ...] = ()
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def out_of_tolerance(self) -> int:
        return sum(1 for _, c in self.calibrations if not c.in_tolerance)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "calibrations": len(self.calibrations),
            "out_of_tolerance": self.out_of_tolerance,
            "assets": sorted({a for a, _ in self.calibrations}),
            "problems": [p.model_dump() for p in self.problems],
            "sha256": self.digest,
        }


def _when(value: Any, zone: tzinfo) -> Any:
    """A day (text or a date cell) at noon in the shop's zone; a date-time without offset in that zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None and value.time() == time(0):
            return datetime.combine(value.date(), NOON, zone)
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, NOON, zone)
    text = _text(value)
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), NOON, zone)
        except ValueError:
            return text
    return text


def _day(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else _text(value)


def check(raw: bytes, *, fmt: str, hub: MaintenanceHub, file: str = "") -> Checked:
    """Every problem of the file (file, row, column, field), or the calibrations it holds."""
    digest = hashlib.sha256(raw).hexdigest()
    named = file or f"the {fmt} file"
    try:
        cells = _cells(raw, fmt, file)
        header = [_text(c).lower() if c is not None else "" for c in next(cells)]
    except StopIteration:
        return Checked(0, (Problem(field="header", message=f"{named} is empty", row=1),), digest=digest)
    except spreadsheets.Unreadable as err:
        return Checked(0, (Problem(field="file", message=str(err)),), digest=digest)
    problems = [
        Problem(field=n, message=f"{named}: column {n} is missing", row=1, column=n)
        for n in REQUIRED
        if n not in header
    ]
    problems += [
        Problem(
            field=n, message=f"{named}: unknown column {n!r}; expected {', '.join(COLUMNS)}", row=1, column=n
        )
        for n in header
        if n and n not in COLUMNS
    ]
    if problems:
        return Checked(0, tuple(problems), digest=digest)
    found: list[tuple[str, CalibrationIn]] = []
    seen: dict[tuple[str, str], int] = {}
    count = 0
    for number, values in enumerate(cells, start=2):
        if all(_blank(v) for v in values):
            continue
        count += 1
        row = {n: values[i] for i, n in enumerate(header) if n and i < len(values) and not _blank(values[i])}

        def bad(column: str, message: str) -> None:
            problems.append(
                Problem(field=column, message=f"{named} row {number}: {message}", row=number, column=column)  # noqa: B023
            )

        missing = [c for c in REQUIRED if c not in row]
        for column in missing:
            bad(column, f"{column} is required")
        if missing:
            continue
        asset_id = _text(row["asset_id"])
        flag = _text(row["in_tolerance"]).lower()
        if flag not in _YES | _NO:
            bad("in_tolerance", f"in_tolerance is {row['in_tolerance']!r}; give yes or no")
            continue
        entered: dict[str, Any] = {
            "calibrated_at": _when(row["calibrated_at"], hub.zone),
            "lab": _text(row["lab"]),
            "certificate_number": _text(row["certificate_number"]),
            "traceability": _text(row["traceability"]),
            "in_tolerance": flag in _YES,
            "as_found": _text(row.get("as_found", "")),
            "as_left": _text(row.get("as_left", "")),
        }
        if "next_due" in row:
            entered["next_due"] = _day(row["next_due"])
        try:
            calibration = CalibrationIn.model_validate(entered)
        except ValidationError as err:
            for error in err.errors():
                loc = [str(p) for p in error["loc"]]
                # no column in the location: the model's own check, of the due day against the date
                column = loc[0] if loc and loc[0] in COLUMNS else "next_due"
                bad(column, f"{column}: {str(error['msg']).removeprefix('Value error, ')}")
            continue
        known, contract_due = hub.calibration_due(asset_id, calibration.calibrated_at)
        if not known:
            bad("asset_id", f"no equipment {asset_id!r} in the register (import the register first)")
            continue
        if contract_due is None and calibration.next_due is None:
            bad("next_due", f"no contract calibrates {asset_id}'s kind; give next_due from the certificate")
            continue
        key = (asset_id, calibration.certificate_number)
        if key in seen:
            bad("certificate_number", f"{asset_id} {key[1]} is on row {seen[key]} already")
            continue
        seen[key] = number
        found.append((asset_id, calibration))
    if problems:
        return Checked(count, tuple(problems), digest=digest)
    return Checked(count, (), tuple(found), digest)


def run(
    raw: bytes, *, fmt: str, hub: MaintenanceHub, actor: str, dry_run: bool = True, file: str = ""
) -> Checked:
    """Check the file; record its calibrations in one transaction when nothing is wrong and not a dry run."""
    checked = check(raw, fmt=fmt, hub=hub, file=file)
    if checked.problems or dry_run:
        return checked
    hub.record_calibrations(checked.calibrations, actor=actor)
    return checked
