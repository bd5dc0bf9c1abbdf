"""``python -m smart.node --station ID``: the node agent without the whole ``smart`` command's imports.

The floor's supervisor starts one per station; loading only what a station
needs keeps a station's start (and a Pi's memory) small. ``smart node run``
is the same thing for people.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from smart import logs
from smart import settings as smart_settings
from smart.ledger import NodeLogError
from smart.node.run import run_station


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smart.node", description=__doc__)
    parser.add_argument("--station", required=True, help="station id, e.g. pt-1")
    args = parser.parse_args(argv)
    settings = smart_settings.load()
    logs.configure(settings.log_level)
    if args.station not in settings.station_ids:
        print(
            f"smart node: unknown station {args.station!r}; this floor has {settings.station_ids}",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(run_station(settings, args.station))
    except NodeLogError as err:
        print(f"smart node: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
