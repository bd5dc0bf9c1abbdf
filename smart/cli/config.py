"""``smart config``: what settings a SMART process would run with."""

from __future__ import annotations

import json

import typer

from smart import settings as smart_settings

app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)


@app.command("show")
def show(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of lines."),
) -> None:
    """Print the effective settings (defaults < settings file < SMART_* environment), secrets masked."""
    shown = smart_settings.load().masked()
    if as_json:
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))
        return
    typer.echo(f"# settings file: {smart_settings.settings_file()}")
    for name, value in shown.items():
        typer.echo(f"{name} = {value}")
