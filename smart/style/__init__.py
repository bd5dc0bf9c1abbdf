"""The shop's one look: the stylesheet the hub's pages and the station kiosk both serve, and readable times.

Both apps mount :data:`DIRECTORY` at ``/static`` (the hub also serves its vendored
chart library there), so a colour or a table's look is changed in one file.
Times are shown the way a person on the floor reads a clock: in the shop's
time zone, to the minute or second, never with microseconds or a ``+00:00``.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The folder served at ``/static``: ``smart.css`` (the shared stylesheet).
DIRECTORY = Path(__file__).parent / "static"


def shop_time(value: object, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """``value`` (a datetime, an ISO 8601 string or a date) as the shop reads it; other values as given.

    A naive datetime is taken as UTC, the way the ledger writes times. An unreadable string is
    returned unchanged, so a page never fails over a time it cannot parse.
    """
    if value is None or value == "":
        return ""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value.isoformat()
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(zone)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {local.tzname()}"


def default_zone() -> ZoneInfo:
    """The machine's zone (``TZ``, an IANA name) until the settings say the shop's; UTC without one."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
