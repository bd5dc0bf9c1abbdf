"""``smart jobs``: the job records stations handed off to the hub, as HandoffCentral indexed them.

Reads the hub database named by the settings (``database_url``, or the
embedded floor's), like ``smart ledger``. Each row names where its
``job.handoff`` entry is in the hub log, so ``smart ledger proof --index``
proves it.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import typer

from smart import logs
from smart import settings as smart_settings
from smart.hub import handoff_central

app = typer.Typer(help="HandoffCentral: the job records stations handed off to the hub.")


def _connect() -> psycopg.Connection[tuple[Any, ...]]:
    settings = smart_settings.load()
    logs.configure(settings.log_level)
    try:
        return psycopg.connect(smart_settings.database_url(settings), autocommit=True)
    except (ValueError, psycopg.Error) as err:
        typer.echo(f"cannot reach the hub database: {err}", err=True)
        raise typer.Exit(2) from err


def _line(found: handoff_central.HandedOff) -> str:
    released = found.released_at.isoformat() if found.released_at else "-"
    po = f"{found.po}/{found.line}" if found.po else "-"
    serials = ",".join(found.serials) or "-"
    return (
        f"{found.job:<12} {found.station:<6} {po:<12} {found.part or '-':<12} {serials:<16} "
        f"{found.signed_by or '-':<10} {released:<26} #{found.ledger_idx}"
    )


@app.command("list")
def list_jobs(
    station: str | None = typer.Option(None, help="Only jobs handed off at this station."),
    po: str | None = typer.Option(None, help="Only jobs of this PO."),
    part: str | None = typer.Option(None, help="Only jobs of this part number."),
    serial: str | None = typer.Option(None, help="Only jobs that carried this serial."),
    limit: int = typer.Option(50, min=1, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Jobs handed off to the hub, newest first."""
    with _connect() as conn:
        try:
            found = handoff_central.jobs(conn, station=station, po=po, part=part, serial=serial, limit=limit)
        except psycopg.errors.UndefinedTable as err:
            typer.echo(f"the database holds no job index yet (start the hub services): {err}", err=True)
            raise typer.Exit(2) from err
    if as_json:
        typer.echo(json.dumps([j.to_json() for j in found], indent=2))
        return
    for row in found:
        typer.echo(_line(row))


@app.command("show")
def show_job(
    job: str = typer.Argument(..., help="The job id (traveler)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One job: each station's hand-off with its whole record; exit 1 if none reached the hub."""
    with _connect() as conn:
        try:
            found = handoff_central.job(conn, job)
        except psycopg.errors.UndefinedTable as err:
            typer.echo(f"the database holds no job index yet (start the hub services): {err}", err=True)
            raise typer.Exit(2) from err
    if not found:
        typer.echo(f"no job {job} has been handed off to the hub", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({"job": job, "handoffs": [j.to_json(record=True) for j in found]}, indent=2))
        return
    for row in found:
        typer.echo(_line(row))
        typer.echo(f"  entry {row.station}#{row.node_seq} sha256 {row.entry_hash}")
