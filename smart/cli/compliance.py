"""``smart compliance search``: ComplianceCentral's refusals from the hub log, as lines, JSON or CSV."""

from __future__ import annotations

import json

import typer

from smart import settings as smart_settings

compliance_app = typer.Typer(
    help="Every deny and warn from every station (ComplianceCentral).", no_args_is_help=True
)


@compliance_app.command("search")
def search(
    station: str | None = typer.Option(None, "--station"),
    rule: str | None = typer.Option(None, "--rule"),
    standard: str | None = typer.Option(None, "--standard"),
    person: str | None = typer.Option(None, "--person", help="A badge id (personal data: the Vault's CLI)."),
    equipment: str | None = typer.Option(None, "--equipment"),
    job: str | None = typer.Option(None, "--job"),
    since: str | None = typer.Option(None, "--since", help="RFC 3339, e.g. 2026-11-30T00:00:00Z."),
    until: str | None = typer.Option(None, "--until"),
    csv_out: bool = typer.Option(False, "--csv", help="CSV (with the badge column)."),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(500, "--limit"),
) -> None:
    """Refusals matching every option given, newest first; an unknown rule or a bad time is named."""
    import psycopg

    from smart.hub.compliance import index
    from smart.hub.services import HubServices

    settings = smart_settings.load()
    with psycopg.connect(HubServices(settings).app_database_url(), autocommit=True) as conn:
        try:
            q = index.query(
                conn,
                station=station,
                rule=rule,
                standard=standard,
                person=person,
                equipment=equipment,
                job=job,
                since=since,
                until=until,
                limit=limit,
            )
        except index.SearchError as err:
            typer.echo(f"smart compliance search: {err}", err=True)
            raise typer.Exit(2) from err
        found = index.search(conn, q)
    if csv_out:
        typer.echo(index.to_csv(found, personal=True), nl=False)
    elif as_json:
        typer.echo(json.dumps([r.json(personal=True) for r in found], indent=2))
    else:
        for r in found:
            typer.echo(
                f"{r.at.isoformat(timespec='seconds')}  {r.station:<6} {r.severity:<4} {r.rule:<32} "
                f"job {r.job or '-'}  badge {r.person or '-'}  {r.message or ''}"
            )
