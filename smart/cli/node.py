"""``smart node``: what runs on a station."""

from __future__ import annotations

import typer

from smart.node.__main__ import main as node_main

app = typer.Typer(help="Run a station's node agent.", no_args_is_help=True)


@app.command("run")
def run(
    station: str = typer.Option(..., "--station", help="Station id, e.g. pt-1."),
    modules: str = typer.Option(
        "all",
        "--modules",
        help="Modules run in-process: all (those the contracts need), none (each runs as `smart module run`),"
        " or a comma list.",
    ),
) -> None:
    """Run the station's agent: mirror, verify, activate, decide, record and ship, until SIGTERM."""
    raise typer.Exit(node_main(["--station", station, "--modules", modules]))
