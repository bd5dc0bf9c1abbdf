"""``smart module``: one station module as a process of its own (what a module's DaemonSet pod runs)."""

from __future__ import annotations

import asyncio
import sys

import typer

from smart import logs
from smart import settings as smart_settings

app = typer.Typer(help="Run one station module as its own process.", no_args_is_help=True)


@app.command("run")
def run(
    module: str = typer.Argument(..., help="The module, e.g. gatekeeper."),
    station: str = typer.Option(
        ..., "--station", help="Station id, e.g. pt-1 (on Kubernetes: the node's name)."
    ),
    leaf_url: str | None = typer.Option(
        None,
        "--leaf-url",
        envvar="SMART_LEAF_URL",
        help="The station's leaf NATS server (default: the one the settings give the station).",
    ),
) -> None:
    """Answer station.<station>.<module>.<verb> on the station's leaf until SIGTERM, as in-process."""
    from smart.modules import framework
    from smart.node import module_run

    settings = smart_settings.load()
    logs.configure(settings.log_level)
    try:
        module_run.runnable(module, framework.load_manifests())
    except module_run.ModuleNotRunnable as err:
        print(f"smart module: {err}", file=sys.stderr)
        raise typer.Exit(2) from err
    if leaf_url is None:
        if station not in settings.station_ids:
            print(
                f"smart module: unknown station {station!r}; this floor has {settings.station_ids}"
                " (or give --leaf-url)",
                file=sys.stderr,
            )
            raise typer.Exit(2)
        leaf_url = f"nats://{settings.host}:{settings.station_nats_port(station)}"
    asyncio.run(
        module_run.run_module(
            module, station_id=station, leaf_url=leaf_url, data_dir=settings.station_data_dir(station)
        )
    )
