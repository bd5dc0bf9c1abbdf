"""Lots from the stores' spreadsheet (CSV, or XLSX through openpyxl), checked whole before writing.

Columns: ``id, material, supplier, certificate, received_on, expires_on,
quantity, unit, stations`` (stations separated by ``;``). :func:`check` is the
dry run: every problem with its row (header = 1) and column, read by the same
model as the API (:class:`LotIn`: an expiry not after receipt, an unknown
unit) and against the store (an unknown material or station, a lot already
received, a unit the material is not counted in). Only a file with no
problem is received, in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from smart.hub import spreadsheets
from smart.hub.clients.importing import Format
from smart.hub.clients.models import Problem
from smart.hub.inventory.models import LotIn
from smart.hub.inventory.store import InventoryHub

COLUMNS = (
    "id",
    "material",
    "supplier",
    "certificate",
    "received_on",
    "expires_on",
    "quantity",
    "unit",
    "stations",
)


@dataclass(frozen=True, slots=True)
class Checked:
    rows: int
    problems: tuple[Problem, ...]
    lots: tuple[LotIn, ...] = ()
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "lots": len(self.lots),
            "problems": [p.model_dump() for p in self.problems],
            "sha256": self.digest,
        }


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    return value.strip() if isinstance(value, str) else value


def check(raw: bytes, fmt: Format, *, inventory: InventoryHub, file: str = "") -> Checked:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        cells = iter(spreadsheets.rows(raw, fmt=fmt.value, file=file))
        header = [str(c).strip().lower() if c is not None else "" for c in next(cells)]
    except StopIteration:
        named = file or "the file"
        return Checked(0, (Problem(field="header", message=f"{named} is empty", row=1),), digest=digest)
    except spreadsheets.Unreadable as err:
        return Checked(0, (Problem(field="file", message=str(err)),), digest=digest)
    problems = [
        Problem(field=c, message=f"column {c} is missing", row=1, column=c)
        for c in COLUMNS
        if c not in header
    ] + [
        Problem(field=c, message=f"unknown column {c!r}; expected {', '.join(COLUMNS)}", row=1, column=c)
        for c in header
        if c and c not in COLUMNS
    ]
    if problems:
        return Checked(0, tuple(problems), digest=digest)
    materials = {m.id: m for m in inventory.materials()}
    held = {lot.id for lot in inventory.lots()}
    lots: list[LotIn] = []
    seen: set[str] = set()
    rows = 0
    for number, values in enumerate(cells, start=2):
        row = {name: _cell(values[i]) if i < len(values) else None for i, name in enumerate(header) if name}
        if all(v in (None, "") for v in row.values()):
            continue
        rows += 1
        row["stations"] = tuple(s.strip() for s in str(row.get("stations") or "").split(";") if s.strip())
        try:
            lot = LotIn.model_validate(row)
        except ValidationError as err:
            for error in err.errors():
                loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
                message = str(error["msg"]).removeprefix("Value error, ")
                column = loc[0] if loc else message.split(":", 1)[0]
                problems.append(Problem(field=column, message=message, row=number, column=column))
            continue

        def bad(column: str, message: str) -> None:
            problems.append(Problem(field=column, message=message, row=number, column=column))  # noqa: B023

        material = materials.get(lot.material)
        if material is None:
            bad("material", f"no material {lot.material}; add it first")
        elif material.unit != lot.unit:
            bad("unit", f"material {lot.material} is counted in {material.unit}, not {lot.unit}")
        unknown = sorted(set(lot.stations) - inventory.stations)
        if unknown:
            bad("stations", f"unknown station {', '.join(unknown)}")
        if lot.id in held or lot.id in seen:
            bad("id", f"lot {lot.id} is received already")
        if lot.expires_on <= inventory.today():
            bad(
                "expires_on", f"lot {lot.id} expired {lot.expires_on}; an expired lot is not put on the shelf"
            )
        seen.add(lot.id)
        lots.append(lot)
    if problems:
        return Checked(rows, tuple(problems), digest=digest)
    return Checked(rows, (), tuple(lots), digest)
