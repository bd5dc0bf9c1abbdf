"""Reading the spreadsheet a shop saved: every row of a CSV, or of an XLSX's first sheet.

The equipment, calibration and lot imports share it, so a file that is not what
its name says (an ``.xls`` or a CSV renamed ``.xlsx``, a workbook cut short in
an e-mail, a CSV saved in a legacy code page) is one clear problem naming the
file and what is wrong with it, before any row is judged, and nothing is
written. openpyxl raises a zip's ``BadZipFile``, a ``KeyError`` for a missing
part, or an XML parse error from deep inside a sheet; the whole file is read
here so that none of these escapes halfway through the rows.
"""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

#: The start of an OLE2 compound file: the old binary ``.xls``.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class Unreadable(ValueError):
    """The file cannot be read as the format it was given as; the message names the file and why."""


def rows(raw: bytes, *, fmt: str, file: str = "") -> list[list[Any]]:
    """Every row of the file (the first is its header), or :class:`Unreadable`."""
    named = file or f"the {fmt} file"
    if fmt == "csv":
        return _csv_rows(raw, named)
    if fmt == "xlsx":
        return _xlsx_rows(raw, named)
    raise Unreadable(f"{named}: unknown format {fmt!r}; csv or xlsx")


def _csv_rows(raw: bytes, named: str) -> list[list[Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1].hex()
        raise Unreadable(
            f"{named} is not UTF-8 text (byte 0x{bad} at offset {err.start}); save it as CSV UTF-8"
        ) from err
    if "\x00" in text:
        raise Unreadable(f"{named} holds NUL bytes: it is not a CSV file (a workbook under a .csv name?)")
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise Unreadable(f"{named} is not a well-formed CSV file: {err}") from err


def _xlsx_rows(raw: bytes, named: str) -> list[list[Any]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    if raw.startswith(_OLE):
        raise Unreadable(f"{named} is not an XLSX workbook: it is an old Excel .xls one; save it as .xlsx")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise Unreadable(
            f"{named} is not an XLSX workbook: it is not a zip archive, as every .xlsx is"
            " (cut short, or another kind of file under an .xlsx name?)"
        )
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (KeyError, InvalidFileException) as err:
        raise Unreadable(f"{named} is a zip archive but not an XLSX workbook ({err})") from err
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise Unreadable(f"{named} is a damaged XLSX workbook ({type(err).__name__}: {err})") from err
    try:
        if not book.worksheets:
            raise Unreadable(f"{named} has no worksheet")
        return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    except Unreadable:
        raise
    except Exception as err:  # an XML parse error or a broken part deep in the sheet, whatever its class
        raise Unreadable(f"{named}: its first sheet cannot be read ({type(err).__name__}: {err})") from err
    finally:
        book.close()
