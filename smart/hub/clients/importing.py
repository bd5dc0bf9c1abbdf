"""Import clients, POs and lines from the spreadsheets shops already keep (CSV, or XLSX through openpyxl).

A file's first row names its columns. **clients**: ``code, name,
retention, nadcap_required, quality_clauses`` (clauses separated by ``;``).
**lines** (POs and their lines in one sheet): ``po, client, received_on,
line, part, part_revision, quantity, unit, serials, lot, unit_price,
due_date`` and the line's flowdown ``spec, spec_revision, class,
acceptance_criteria, nadcap_required, retention``; a further row with the
same PO and line adds another flowdown to it. Serials are separated by
``;`` or spaces; dates are ``YYYY-MM-DD`` (or date cells); yes/no, true/false
for the booleans.

:func:`check` reads the whole file and lists every problem, each with its
row (as the spreadsheet numbers it, header = 1) and column; :func:`run`
writes only when there is none, all in one transaction, and otherwise
writes nothing. A dry run is :func:`check` alone. The file is read whole by
:mod:`smart.hub.spreadsheets`, the hub imports' one reader, so a file that is
not what its name says (a damaged workbook, a CSV that is not UTF-8) is one
problem naming it, before any row, and nothing is written.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from smart.hub import spreadsheets
from smart.hub.clients.models import ClientIn, FlowdownIn, LineIn, Problem, PurchaseOrderIn
from smart.hub.clients.store import ClientManager


class What(enum.StrEnum):
    CLIENTS = "clients"
    LINES = "lines"


class Format(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


COLUMNS: Mapping[What, tuple[str, ...]] = {
    What.CLIENTS: ("code", "name", "retention", "nadcap_required", "quality_clauses"),
    What.LINES: (
        "po",
        "client",
        "received_on",
        "line",
        "part",
        "part_revision",
        "quantity",
        "unit",
        "serials",
        "lot",
        "unit_price",
        "due_date",
        "spec",
        "spec_revision",
        "class",
        "acceptance_criteria",
        "nadcap_required",
        "retention",
    ),
}
_OPTIONAL = frozenset({"quality_clauses", "serials", "lot", "retention", "unit"})
_LINE_FIELDS = (
    "line",
    "part",
    "part_revision",
    "quantity",
    "unit",
    "serials",
    "lot",
    "unit_price",
    "due_date",
)
_FLOWDOWN_FIELDS = ("spec", "spec_revision", "class", "acceptance_criteria", "nadcap_required", "retention")


@dataclass(frozen=True, slots=True)
class Checked:
    """What a file holds, or what is wrong with it, row by row and column by column."""

    what: What
    rows: int
    problems: tuple[Problem, ...]
    clients: tuple[ClientIn, ...] = ()
    orders: tuple[PurchaseOrderIn, ...] = ()
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what.value,
            "rows": self.rows,
            "ok": self.ok,
            "problems": [p.model_dump() for p in self.problems],
            "pos": len(self.orders),
            "lines": sum(len(o.lines) for o in self.orders),
            "clients": len(self.clients),
            "sha256": self.digest,
        }


@dataclass
class _Sheet:
    header: list[str]
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _read(raw: bytes, fmt: Format, what: What, file: str) -> tuple[_Sheet | None, list[Problem]]:
    try:  # the whole file first, by the hub imports' one reader: a damaged one is one problem naming it
        cells = iter(spreadsheets.rows(raw, fmt=fmt.value, file=file))
    except spreadsheets.Unreadable as err:
        return None, [Problem(field="file", message=str(err))]
    try:
        header_cells = next(cells)
    except StopIteration:
        return None, [Problem(field="header", message=f"{file or 'the file'} is empty", row=1)]
    header = [str(c).strip().lower() if c is not None else "" for c in header_cells]
    wanted = COLUMNS[what]
    problems = [
        Problem(field=name, message=f"column {name} is missing", row=1, column=name)
        for name in wanted
        if name not in header and name not in _OPTIONAL
    ]
    problems += [
        Problem(
            field=name, message=f"unknown column {name!r}; expected {', '.join(wanted)}", row=1, column=name
        )
        for name in header
        if name and name not in wanted
    ]
    sheet = _Sheet(header)
    for number, values in enumerate(cells, start=2):
        if all(_blank(v) for v in values):
            continue
        row = {name: values[i] if i < len(values) else None for i, name in enumerate(header) if name}
        sheet.rows.append((number, {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}))
    return sheet, problems


def _bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("yes", "y", "true", "1"):
            return True
        if lowered in ("no", "n", "false", "0"):
            return False
    return value


def _date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    return value


def _list(value: Any, *, spaces: bool) -> tuple[str, ...]:
    if _blank(value):
        return ()
    text = str(value).replace(";", " " if spaces else ";")
    return tuple(p.strip() for p in (text.split() if spaces else text.split(";")) if p.strip())


def _present(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {name: row[name] for name in names if name in row and not _blank(row[name])}


def _problems(err: ValidationError, row: int, prefix: Sequence[str] = ()) -> list[Problem]:
    """Each of pydantic's errors as a problem at ``row`` in the column the field comes from."""
    found: list[Problem] = []
    for error in err.errors():
        loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
        message = str(error["msg"]).removeprefix("Value error, ")
        name = loc[-1] if loc else ""
        if not name and ":" in message:  # a check across fields names its field first
            name, _, message = message.partition(": ")
        name = {"class_": "class"}.get(name, name)
        if name in ("flowdowns",):
            name = "spec"
        found.append(
            Problem(field=".".join([*prefix, *loc]) or name, message=message, row=row, column=name or None)
        )
    return found


def check(
    raw: bytes, *, fmt: Format, what: What, clients: ClientManager | None = None, file: str = ""
) -> Checked:
    """Every problem of the file by row and column (a dry run), and what it would enter if none.

    ``file`` names the file in a problem with the whole of it (not a workbook, not UTF-8, empty).
    """
    digest = hashlib.sha256(raw).hexdigest()
    sheet, problems = _read(raw, fmt, what, file)
    if sheet is None:
        return Checked(what, 0, tuple(problems), digest=digest)
    if what is What.CLIENTS:
        found_clients: list[ClientIn] = []
        rows_of: list[int] = []
        for number, row in sheet.rows:
            values = _present(row, COLUMNS[What.CLIENTS])
            if "nadcap_required" in values:
                values["nadcap_required"] = _bool(values["nadcap_required"])
            values["quality_clauses"] = _list(row.get("quality_clauses"), spaces=False)
            try:
                found_clients.append(ClientIn.model_validate(values))
                rows_of.append(number)
            except ValidationError as err:
                problems += _problems(err, number)
        codes = [c.code for c in found_clients]
        for client, number in zip(found_clients, rows_of, strict=True):
            if codes.count(client.code) > 1:
                problems.append(
                    Problem(
                        field="code",
                        message=f"client {client.code} is in the file twice",
                        row=number,
                        column="code",
                    )
                )
        if clients is not None:
            for code in clients.existing_clients(codes):
                number = rows_of[codes.index(code)]
                problems.append(
                    Problem(field="code", message=f"client {code} exists already", row=number, column="code")
                )
        return Checked(what, len(sheet.rows), tuple(problems), clients=tuple(found_clients), digest=digest)

    # POs and lines: group rows by PO, then by line; a repeated (po, line) row adds a flowdown.
    grouped: dict[str, dict[str, Any]] = {}
    for number, row in sheet.rows:
        po = row.get("po")
        if _blank(po):
            problems.append(Problem(field="po", message="every row names its PO", row=number, column="po"))
            continue
        order = grouped.setdefault(str(po), {"rows": [], "lines": {}, "header": (number, row)})
        order["rows"].append(number)
        line_no = "" if _blank(row.get("line")) else str(row.get("line"))
        held = order["lines"].get(line_no)
        flowdown_values = _present(row, _FLOWDOWN_FIELDS)
        if "nadcap_required" in flowdown_values:
            flowdown_values["nadcap_required"] = _bool(flowdown_values["nadcap_required"])
        flowdown: FlowdownIn | None = None
        if flowdown_values:  # a row with no flowdown columns at all adds none (said once for its line)
            try:
                flowdown = FlowdownIn.model_validate(flowdown_values)
            except ValidationError as err:
                problems += _problems(err, number)
        if held is None:
            order["lines"][line_no] = {
                "row": number,
                "values": row,
                "flowdowns": [flowdown] if flowdown else [],
            }
        elif flowdown is not None:
            held["flowdowns"].append(flowdown)
    orders: list[PurchaseOrderIn] = []
    order_rows: list[int] = []
    for po, order in grouped.items():
        header_row, header = order["header"]
        lines: list[LineIn] = []
        for held in order["lines"].values():
            values = _present(held["values"], _LINE_FIELDS)
            values["serials"] = _list(held["values"].get("serials"), spaces=True)
            values["due_date"] = _date(values.get("due_date"))
            values["flowdowns"] = tuple(held["flowdowns"])
            if not held["flowdowns"] and not any(p.row == held["row"] for p in problems):
                problems.append(
                    Problem(
                        field="spec",
                        message="a PO line needs at least one flowdown",
                        row=held["row"],
                        column="spec",
                    )
                )
                continue
            try:
                lines.append(LineIn.model_validate(values))
            except ValidationError as err:
                problems += _problems(err, held["row"])
        try:
            orders.append(
                PurchaseOrderIn.model_validate(
                    {
                        "po": po,
                        "client": header.get("client"),
                        "received_on": _date(header.get("received_on")),
                        "lines": tuple(lines),
                    }
                )
            )
            order_rows.append(header_row)
        except ValidationError as err:
            if lines or not any(p.row in order["rows"] for p in problems):
                problems += [p for p in _problems(err, header_row) if p.column != "lines"]
    if clients is not None and not problems:
        for refused in clients.check_pos(orders):
            index_text, _, rest = refused.field.partition("].")
            index = int(index_text.strip("["))
            column = rest.rsplit(".", 1)[-1]
            problems.append(
                Problem(field=rest, message=refused.message, row=order_rows[index], column=column)
            )
    problems.sort(key=lambda p: (p.row or 0, p.column or ""))
    return Checked(what, len(sheet.rows), tuple(problems), orders=tuple(orders), digest=digest)


def run(
    raw: bytes, *, fmt: Format, what: What, clients: ClientManager, actor: str, source: str, dry_run: bool
) -> Checked:
    """Check the file; unless it is a dry run and only when nothing is wrong, enter all of it at once."""
    checked = check(raw, fmt=fmt, what=what, clients=clients, file=source)
    if dry_run or not checked.ok:
        return checked
    label = f"{source} sha256:{checked.digest[:16]}"
    if what is What.CLIENTS:
        clients.add_clients(checked.clients, actor=actor, source=label)
    else:
        clients.add_pos(checked.orders, actor=actor, source=label)
    return checked
