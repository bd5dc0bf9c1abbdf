"""``smart grafana``: the chart's Grafana dashboards, regenerated from :mod:`smart.grafana.dashboards`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Grafana dashboards as code.", no_args_is_help=True)


@app.command("dashboards")
def dashboards(
    write: bool = typer.Option(
        False, "--write", help="Write the JSON into the chart (else check it is current)."
    ),
    directory: Path | None = typer.Option(None, "--dir", help="Where to write (default: the chart's files)."),
) -> None:
    """Check the chart's dashboards are what the code builds (exit 1 naming stale files), or write them."""
    from smart.grafana import dashboards as built

    target = directory or built.CHART_DASHBOARDS
    if write:
        for path in built.write(target):
            typer.echo(f"wrote {path}")
        return
    stale = [
        name
        for name, text in built.render().items()
        if not (target / name).exists() or (target / name).read_text(encoding="utf-8") != text
    ]
    if stale:
        typer.echo(
            f"stale in {target}: {', '.join(stale)} (run `smart grafana dashboards --write`)", err=True
        )
        raise typer.Exit(1)
    typer.echo(f"{target}: current")
