"""Import the equipment register from the spreadsheet a shop keeps it in (CSV, or XLSX through openpyxl).

The first row names the columns: ``asset_id, kind, station, serial,
description, furnace_class, instrumentation, furnace_type,
thermocouple_metal, grade`` and one qualified range (``range_id, range_min,
range_max, range_unit``) and one usage limit (``usage_task, usage_unit,
usage_every, usage_due_within``) per row; a further row with the same
``asset_id`` adds another range or usage limit to it. Units are checked:
a range in anything but a temperature unit, a usage limit in anything but
``cycles`` or ``hours``, is a problem naming its row and column.

:func:`check` lists every problem, each with its row (header = 1) and
column; :func:`run` writes only a file with none, in one transaction, and a
dry run (the default) writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from smart.contracts import units
from smart.hub import spreadsheets
from smart.hub.clients.models import Problem
from smart.hub.maintenance.models import EquipmentIn
from smart.hub.maintenance.store import MaintenanceHub

COLUMNS = (
    "asset_id",
    "kind",
    "station",
    "serial",
    "description",
    "furnace_class",
    "instrumentation",
    "furnace_type",
    "thermocouple_metal",
    "grade",
    "range_id",
    "range_min",
    "range_max",
    "range_unit",
    "usage_task",
    "usage_unit",
    "usage_every",
    "usage_due_within",
)
REQUIRED = ("asset_id", "kind", "station", "serial")
_ASSET: tuple[str, ...] = ("kind", "station", "serial", "description", "furnace_class", "instrumentation")
_ASSET += ("furnace_type", "thermocouple_metal", "grade")
_RANGE = {"range_id": "id", "range_min": "min", "range_max": "max", "range_unit": "unit"}
_USAGE = {
    "usage_task": "task",
    "usage_unit": "unit",
    "usage_every": "every",
    "usage_due_within": "due_within",
}
_COLUMN_OF = {
    "qualified_ranges": "range_unit",
    "usage_limits": "usage_unit",
    **{v: k for k, v in _RANGE.items() if k != "range_unit"},
}


@dataclass(frozen=True, slots=True)
class Checked:
    rows: int
    problems: tuple[Problem, ...]
    equipment: tuple[EquipmentIn, ...] = ()
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "equipment": len(self.equipment),
            "problems": [p.model_dump() for p in self.problems],
            "sha256": self.digest,
        }


def _cells(raw: bytes, fmt: str, file: str = "") -> Iterator[list[Any]]:
    """The file's rows, read whole first (:class:`spreadsheets.Unreadable` before any row is judged)."""
    return iter(spreadsheets.rows(raw, fmt=fmt, file=file))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def check(raw: bytes, *, fmt: str, stations: Collection[str] = (), file: str = "") -> Checked:
    """Every problem of the file by row and column, or the equipment it holds.

    ``file`` is the file's name as the person chose it, for the message when the file is unreadable.
    """
    digest = hashlib.sha256(raw).hexdigest()
    try:
        cells = _cells(raw, fmt, file)
        header = [_text(c).lower() if c is not None else "" for c in next(cells)]
    except StopIteration:
        named = file or "the file"
        return Checked(0, (Problem(field="header", message=f"{named} is empty", row=1),), digest=digest)
    except spreadsheets.Unreadable as err:
        return Checked(0, (Problem(field="file", message=str(err)),), digest=digest)
    problems = [
        Problem(field=n, message=f"column {n} is missing", row=1, column=n)
        for n in REQUIRED
        if n not in header
    ]
    problems += [
        Problem(field=n, message=f"unknown column {n!r}; expected {', '.join(COLUMNS)}", row=1, column=n)
        for n in header
        if n and n not in COLUMNS
    ]
    assets: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    count = 0
    for number, values in enumerate(cells, start=2):
        if all(_blank(v) for v in values):
            continue
        count += 1
        row = {n: values[i] for i, n in enumerate(header) if n and i < len(values) and not _blank(values[i])}
        asset_id = _text(row.get("asset_id", ""))
        if not asset_id:
            problems.append(Problem(field="asset_id", message="no asset_id", row=number, column="asset_id"))
            continue
        held = assets.setdefault(asset_id, {"asset_id": asset_id, "qualified_ranges": [], "usage_limits": []})
        first_row.setdefault(asset_id, number)
        for name in _ASSET:
            if name in row:
                value = _text(row[name])
                if name in held and held[name] != value:
                    problems.append(
                        Problem(
                            field=name,
                            message=f"{asset_id}: {name} is {held[name]!r} on row {first_row[asset_id]}",
                            row=number,
                            column=name,
                        )
                    )
                held[name] = value
        if any(c in row for c in _RANGE):
            unit = _text(row.get("range_unit", ""))
            try:
                units.conversion(unit, "°C")
            except units.UnitError:
                problems.append(
                    Problem(
                        field="range_unit",
                        message=f"unknown unit {unit!r} for a temperature range (°C or °F)",
                        row=number,
                        column="range_unit",
                    )
                )
                continue
            held["qualified_ranges"].append({v: row[k] for k, v in _RANGE.items() if k in row})
        if any(c in row for c in _USAGE):
            unit = _text(row.get("usage_unit", ""))
            if unit not in ("cycles", "hours"):
                problems.append(
                    Problem(
                        field="usage_unit",
                        message=f"unknown unit {unit!r} for a usage limit (cycles or hours)",
                        row=number,
                        column="usage_unit",
                    )
                )
                continue
            held["usage_limits"].append({v: row[k] for k, v in _USAGE.items() if k in row})
    found: list[EquipmentIn] = []
    for asset_id, entered in assets.items():
        if stations and "station" in entered and entered["station"] not in stations:
            problems.append(
                Problem(
                    field="station",
                    message=f"{asset_id}: unknown station {entered['station']!r}; the hub knows "
                    f"{', '.join(sorted(stations))}",
                    row=first_row[asset_id],
                    column="station",
                )
            )
            continue
        try:
            found.append(EquipmentIn.model_validate(entered))
        except ValidationError as err:
            for error in err.errors():
                loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
                column = next(
                    (_COLUMN_OF.get(p, p) for p in reversed(loc) if p in COLUMNS or p in _COLUMN_OF), None
                )
                problems.append(
                    Problem(
                        field=".".join(loc) or "row",
                        message=f"{asset_id}: {str(error['msg']).removeprefix('Value error, ')}",
                        row=first_row[asset_id],
                        column=column,
                    )
                )
    if problems:
        return Checked(count, tuple(problems), digest=digest)
    return Checked(count, (), tuple(found), digest)


def run(
    raw: bytes, *, fmt: str, hub: MaintenanceHub, actor: str, dry_run: bool = True, file: str = ""
) -> Checked:
    """Check the file; write its equipment in one transaction when nothing is wrong and not a dry run."""
    checked = check(raw, fmt=fmt, stations=hub.stations, file=file)
    if checked.problems or dry_run:
        return checked
    hub.register_many(checked.equipment, actor=actor)
    return checked
