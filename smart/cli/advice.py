"""``smart advice run`` / ``show``: AI Central's findings, issued onto the ledger or only shown."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from smart import settings as smart_settings

if TYPE_CHECKING:
    from smart.hub.advice.central import AiCentral, Analysis

app = typer.Typer(help="AI Central: advice from the records (never a decision).", no_args_is_help=True)


def _central() -> AiCentral:
    from smart import logs
    from smart.hub.advice import service
    from smart.hub.services import HubServices
    from smart.keys import KeyStore

    settings = smart_settings.load()
    logs.configure(settings.log_level)  # on stderr: stdout is the findings (``--json`` parses it)
    hub = HubServices(settings)
    return service.central(
        hub.app_database_url(),
        ledger_dir=settings.state_dir / "ledger",
        keys=KeyStore(settings.key_directory),
        zone=settings.shop_zone,
        vault_url=hub.owner_database_url(),
    )


def _print(analysis: Analysis, as_json: bool) -> None:
    if as_json:
        body = {
            "at": analysis.at.isoformat(),
            "issued": analysis.issued_now,
            "unread": list(analysis.unread),
            "advice": [{**a.finding.to_json(), "entry": a.node_seq} for a in analysis.advice],
        }
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    for a in analysis.advice:
        where = f"ai-central #{a.node_seq}" if a.node_seq is not None else "not issued"
        typer.echo(f"[{a.finding.kind}] {a.finding.suggestion} ({where}; {len(a.finding.evidence)} records)")
    for unread in analysis.unread:
        typer.echo(f"not read: {unread}", err=True)
    typer.echo(f"{len(analysis.advice)} findings, {analysis.issued_now} issued now")


@app.command("run")
def run(as_json: bool = typer.Option(False, "--json")) -> None:
    """Analyse the records and issue each new finding once as an ``advice.issued`` entry."""
    _print(_central().run(), as_json)


@app.command("show")
def show(as_json: bool = typer.Option(False, "--json")) -> None:
    """The findings now, with the entry of each one already issued; records nothing."""
    _print(_central().analyse(), as_json)
