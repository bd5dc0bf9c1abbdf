"""``smart hub``: what runs on a hub (its services and web app, from settings)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from smart import logs
from smart import settings as smart_settings

if TYPE_CHECKING:
    from smart.hub.hubquery.answers import HubQuery

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


def _hub_query(settings: smart_settings.Settings, role: str) -> HubQuery:
    """The role's HubQuery with that role's own connections, as ``smart hub run --role`` builds it."""
    from datetime import datetime

    from smart.hub.hubquery.answers import HubQuery
    from smart.hub.services import HubServices
    from smart.hub.vault import service as vault
    from smart.hub.vault.smartid import SmartId
    from smart.keys import KeyStore

    hub = HubServices(settings, role=role)
    smartid = None
    if hub.runs("smart-id"):
        keys = KeyStore(settings.key_directory)
        smartid = SmartId(
            hub.owner_database_url(),
            key=keys.signing_key(vault.CREDENTIAL_KEY),
            ledger=vault.SharedNodeLog(settings.state_dir / "ledger", keys),
            zone=settings.shop_zone,
        )
    return HubQuery(
        role,
        smartid=smartid,
        business_url=hub.role_database_url() if hub.runs("business-feed") else None,
        maintenance_url=hub.app_database_url() if hub.runs("maintenance") else None,
        today=lambda: datetime.now(settings.shop_zone).date(),
    )


@app.command("query")
def query(
    question: str = typer.Argument("", help="The question typed, e.g. 'status of PO 4411'."),
    audio: Path | None = typer.Option(None, "--audio", help="A WAV recording of the question, instead."),
    role: str = typer.Option("business", "--role", help="Which hub answers: vault, floor, business or all."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: question, heard, topic, text."),
) -> None:
    """Ask "Hey SMART" at a hub, typed or spoken, answered from that hub's own data with its own login."""
    from smart.hub.hubquery import answers, speech
    from smart.hub.run import ROLES

    if role not in ROLES:
        print(f"smart hub query: --role {role!r}: expected one of {', '.join(ROLES)}", file=sys.stderr)
        raise typer.Exit(2)
    if (audio is None) == (not question.strip()):
        print("smart hub query: give a QUESTION or --audio FILE (one of them)", file=sys.stderr)
        raise typer.Exit(2)
    settings = smart_settings.load()
    logs.configure(settings.log_level)  # on stderr: stdout is the answer
    try:
        hub_query = _hub_query(settings, role)
        answer = hub_query.hear(audio) if audio is not None else hub_query.ask(question)
    except (speech.SpeechError, ValueError) as err:
        print(f"smart hub query: {err}", file=sys.stderr)
        raise typer.Exit(2) from err
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(answer), indent=2))
        return
    if answer.heard is not None:
        typer.echo(f"heard: {answer.heard or '(nothing recognised)'}")
    typer.echo(answer.text)
    for row in answer.rows:
        typer.echo("  " + "  ".join(row.values()))
    if answer.topic == answers.NOT_UNDERSTOOD:
        raise typer.Exit(1)
