"""``python -m smart.node --station ID``: the node agent without the whole ``smart`` command's imports.

The floor's supervisor starts one per station; loading only what a station
needs keeps a station's start (and a Pi's memory) small. ``smart node run``
is the same thing for people.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping

from smart import logs
from smart import settings as smart_settings
from smart.ledger import NodeLogError
from smart.modules import framework
from smart.node.run import run_station


def hosted_modules(value: str, manifests: Mapping[str, framework.ModuleManifest]) -> frozenset[str] | None:
    """``--modules`` read: None for ``all``, nothing for ``none``, else the named modules (each known)."""
    value = value.strip()
    if value == "all":
        return None
    if value == "none":
        return frozenset()
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in manifests]
    if unknown or not names:
        known = ", ".join(sorted(manifests))
        raise ValueError(
            f"unknown module {', '.join(unknown) or '(empty)'}; expected all, none or some of {known}"
        )
    return frozenset(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smart.node", description=__doc__)
    parser.add_argument("--station", required=True, help="station id, e.g. pt-1")
    parser.add_argument(
        "--modules",
        default="all",
        help="modules run in this process: all (those the contracts need), none, or a comma list",
    )
    args = parser.parse_args(argv)
    try:
        hosted = hosted_modules(args.modules, framework.load_manifests())
    except ValueError as err:
        print(f"smart node: --modules: {err}", file=sys.stderr)
        return 2
    settings = smart_settings.load()
    logs.configure(settings.log_level)
    if not settings.knows(args.station):
        print(
            f"smart node: unknown station {args.station!r}: this node is"
            f" {settings.node_station or 'no station'} (SMART_NODE_STATION) and the floor has"
            f" {', '.join(settings.station_ids)}",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(run_station(settings, args.station, hosted=hosted))
    except NodeLogError as err:
        print(f"smart node: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
