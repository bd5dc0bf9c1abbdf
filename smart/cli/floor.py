"""``smart up``: the whole floor on one machine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from smart import logs
from smart import settings as smart_settings
from smart.runtime import up as floor_up
from smart.runtime.floor import FloorError
from smart.runtime.supervisor import StartError


def up(
    stations: int | None = typer.Option(None, "--stations", min=1, max=64, help="Number of stations [6]."),
    state_dir: Path | None = typer.Option(None, "--state-dir", help="Where data lives between runs."),
    port: int | None = typer.Option(None, "--port", help="Port of the hub web app [8480]."),
    demo_shop: bool = typer.Option(
        False, "--demo-shop", help="Put a made-up penetrant shop (people, equipment, lots, a PO) at pt-1."
    ),
) -> None:
    """Run PostgreSQL, the hub NATS, a leaf NATS per station and the hub web app until Ctrl-C."""
    try:
        settings = smart_settings.load(stations=stations, state_dir=state_dir, web_port=port)
    except ValueError as err:
        typer.echo(f"smart up: invalid settings: {err}", err=True)
        raise typer.Exit(2) from err
    logs.configure(settings.log_level)

    def ready(urls: dict[str, str]) -> None:
        typer.echo("SMART floor is up:")
        for what, url in urls.items():
            typer.echo(f"  {what:<34} {url}")
        typer.echo("Press Ctrl-C to stop.")

    try:
        asyncio.run(floor_up.run(settings, on_ready=ready, demo=demo_shop))
    except (FloorError, StartError) as err:
        typer.echo(f"smart up: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo("SMART floor stopped.")
