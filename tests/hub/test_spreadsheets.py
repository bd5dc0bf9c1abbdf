"""The imports' reader refuses a file that is not what its name says, naming the file and what is wrong."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook

from smart.hub import spreadsheets


def _workbook() -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["asset_id", "kind"])
    sheet.append(["UV-METER-1", "light-meter"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_good_workbook_and_csv_give_their_rows() -> None:
    assert spreadsheets.rows(_workbook(), fmt="xlsx", file="register.xlsx") == [
        ["asset_id", "kind"],
        ["UV-METER-1", "light-meter"],
    ]
    assert spreadsheets.rows("asset_id\n°C\n".encode(), fmt="csv") == [["asset_id"], ["°C"]]


@pytest.mark.parametrize(
    ("raw", "fmt", "said"),
    [
        (
            b"asset_id,kind\nUV-METER-1,light-meter\n",
            "xlsx",
            "register.xlsx is not an XLSX workbook: it is not a zip",
        ),
        (_workbook()[:300], "xlsx", "register.xlsx is not an XLSX workbook: it is not a zip"),  # cut short
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "xlsx", "it is an old Excel .xls one"),
        (b"asset_id,kind\nF-1,furn\xe9\n", "csv", "register.xlsx is not UTF-8 text (byte 0xe9 at offset 22)"),
        (b"asset_id\0kind\n", "csv", "holds NUL bytes"),
    ],
)
def test_a_file_that_cannot_be_read_names_the_file_and_why(raw: bytes, fmt: str, said: str) -> None:
    with pytest.raises(spreadsheets.Unreadable, match=r"register\.xlsx") as refused:
        spreadsheets.rows(raw, fmt=fmt, file="register.xlsx")
    assert said in str(refused.value)


def test_a_zip_that_is_not_a_workbook_and_a_workbook_with_a_broken_sheet() -> None:
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    with pytest.raises(
        spreadsheets.Unreadable, match=r"register\.xlsx is a zip archive but not an XLSX workbook"
    ):
        spreadsheets.rows(other.getvalue(), fmt="xlsx", file="register.xlsx")
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_workbook())) as good, zipfile.ZipFile(broken, "w") as archive:
        for item in good.infolist():
            data = good.read(item)
            archive.writestr(item, data[: len(data) // 2] if item.filename.endswith("sheet1.xml") else data)
    with pytest.raises(spreadsheets.Unreadable, match=r"register\.xlsx: its first sheet cannot be read"):
        spreadsheets.rows(broken.getvalue(), fmt="xlsx", file="register.xlsx")
