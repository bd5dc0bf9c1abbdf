"""``smart hub``: what runs on a hub (its services and web app, from settings)."""

from __future__ import annotations

import asyncio
import sys

import typer

from smart import logs
from smart import settings as smart_settings

app = typer.Typer(help="Run the hub's services.", no_args_is_help=True)


@app.command("run")
def run(
    role: str = typer.Option(
        "all", "--role", help="Which hub to run: vault, floor, business, or all in one process."
    ),
) -> None:
    """Serve the hub (ledger intake, SMART-ID, HandoffCentral, reorders, web) from settings, until SIGTERM."""
    from smart.hub.run import ROLES, run_hub

    settings = smart_settings.load()
    logs.configure(settings.log_level)
    if role not in ROLES:
        print(f"smart hub: --role {role!r}: expected one of {', '.join(ROLES)}", file=sys.stderr)
        raise typer.Exit(2)
    try:
        smart_settings.database_url(settings)
    except ValueError as err:
        print(f"smart hub: {err}", file=sys.stderr)
        raise typer.Exit(2) from err
    asyncio.run(run_hub(settings, role=role))
