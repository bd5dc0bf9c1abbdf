"""``smart client``, ``smart po``, ``smart traveler``: the hub's work from a terminal.

The same services as the hub pages and ``/api/v1``, on the hub database
named by the settings, recording on the same ledger nodes under
``<state_dir>/ledger/``. The actor is the command's operating-system user
(``cli:<user>``), never a name typed on the command line: who may run these
is who may reach the hub database and its state directory. POs and
travelers come from YAML or JSON files (checked by the same models as the
API; a refusal names the field); spreadsheets through ``import`` (a dry
run unless ``--apply``). ``smart po release`` talks to the hub's NATS to put
the records into the routed stations' bucket.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import typer
import yaml
from nats.aio.client import Client as NatsClient
from pydantic import BaseModel, ValidationError

from smart import logs
from smart import settings as smart_settings
from smart.bus import at_once
from smart.hub import work as work_services
from smart.hub.clients import importing
from smart.hub.clients.models import ClientIn, Outcome, PurchaseOrderIn, ReviewIn
from smart.hub.clients.store import ClientManager, Refused
from smart.hub.release import job_view
from smart.hub.release import store as release_store
from smart.hub.service_log import CLIENT_MANAGER, HANDOFF_CENTRAL, TRAVELERS, ServiceNodeLog
from smart.hub.travelers.models import ProcedureIn, TemplateIn, TravelerIn
from smart.hub.travelers.store import Travelers
from smart.hub.vault.service import hub_nats_url
from smart.keys import KeyStore
from smart.settings import Settings

Model = TypeVar("Model", bound=BaseModel)

client_app = typer.Typer(help="Clients (ClientManager on the Floor hub).", no_args_is_help=True)
po_app = typer.Typer(help="Customer POs and lines: enter, review, release, follow.", no_args_is_help=True)
traveler_app = typer.Typer(
    help="Travelers: each PO line's route, and approved procedures.", no_args_is_help=True
)


def _logs() -> None:
    """Logs go to stderr, so what a command prints on stdout can be read by scripts."""
    logs.configure(smart_settings.load().log_level)


for _app in (client_app, po_app, traveler_app):
    _app.callback()(_logs)


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def _fail(err: Exception | str) -> typer.Exit:
    typer.echo(f"refused: {err}", err=True)
    return typer.Exit(1)


async def hub_nats(settings: Settings, *, name: str) -> NatsClient:
    """The hub NATS, tried once: a person waits on the command, not on nats-py's retries.

    No answer, or a refused sign-in, is one line naming host and port (never the URL's password)
    and that nothing changed, and exit 1 (:class:`~smart.bus.at_once.HubUnreachable`).
    """
    try:
        return await at_once.connect(
            hub_nats_url(settings),
            name=name,
            signin=settings.hub_nats_signin(),
            what="the hub NATS",
            who="the driver's",
            advice=at_once.START_THE_FLOOR,
        )
    except at_once.HubUnreachable as err:
        raise _fail(err) from err


@contextmanager
def _services(settings: Settings | None = None) -> Iterator[tuple[Settings, ClientManager, Travelers]]:
    settings = settings or smart_settings.load()
    try:
        url = smart_settings.database_url(settings)
        work_services.migrate(url)
    except (ValueError, psycopg.Error) as err:
        raise _fail(f"cannot reach the hub database: {err}") from err
    keys = KeyStore(settings.key_directory)
    ledger_dir = settings.state_dir / "ledger"
    clients = ClientManager(url, ledger=ServiceNodeLog(ledger_dir, keys, node=CLIENT_MANAGER), pool_size=1)
    travelers = Travelers(
        url,
        ledger=ServiceNodeLog(ledger_dir, keys, node=TRAVELERS),
        stations=settings.station_ids,
        pool_size=1,
    )
    try:
        yield settings, clients, travelers
    except Refused as err:
        raise _fail(err) from err
    finally:
        clients.close()
        travelers.close()


def _load(path: Path, model: type[Model]) -> Model:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return model.model_validate(raw)
    except OSError as err:
        raise _fail(f"{path}: {err}") from err
    except yaml.YAMLError as err:
        raise _fail(f"{path}: not YAML: {err}") from err
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise _fail(f"{path}: {problems}") from err


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


# -- clients ------------------------------------------------------------------------------------


@client_app.command("add")
def client_add(
    code: str,
    name: str = typer.Option(..., help="The client's name."),
    retention: str = typer.Option(..., help="Record retention rule, e.g. '10 years after final payment'."),
    nadcap: bool = typer.Option(..., "--nadcap/--no-nadcap", help="Does the client require Nadcap?"),
    clause: list[str] = typer.Option([], "--clause", help="A quality clause (repeat for more)."),
) -> None:
    """Add a client."""
    try:
        client = ClientIn(
            code=code, name=name, retention=retention, nadcap_required=nadcap, quality_clauses=tuple(clause)
        )
    except ValidationError as err:
        raise _fail(err) from err
    with _services() as (_, clients, _t):
        _print(clients.add_client(client, actor=actor()).model_dump(mode="json"))


@client_app.command("list")
def client_list() -> None:
    with _services() as (_, clients, _t):
        _print([c.model_dump(mode="json") for c in clients.clients()])


@client_app.command("import")
def client_import(
    path: Path, apply: bool = typer.Option(False, "--apply", help="Write when the file has no problem.")
) -> None:
    """Import clients from CSV or XLSX; a dry run (every problem by row and column) unless --apply."""
    _import(path, importing.What.CLIENTS, apply=apply)


def _import(path: Path, what: importing.What, *, apply: bool) -> None:
    fmt = importing.Format.XLSX if path.suffix.lower() == ".xlsx" else importing.Format.CSV
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise _fail(f"{path}: {err}") from err
    with _services() as (_, clients, _t):
        checked = importing.run(
            raw, fmt=fmt, what=what, clients=clients, actor=actor(), source=path.name, dry_run=not apply
        )
    for problem in checked.problems:
        typer.echo(f"{path}: row {problem.row}, column {problem.column}: {problem.message}", err=True)
    shown = checked.to_json()
    if not checked.ok:
        typer.echo(f"{path}: {len(checked.problems)} problems; nothing written", err=True)
        raise typer.Exit(1)
    verb = "imported" if apply else "would import (dry run; --apply to write)"
    typer.echo(
        f"{path}: {verb} {shown['clients'] or shown['lines']} {'clients' if shown['clients'] else 'lines'}"
    )


# -- POs ----------------------------------------------------------------------------------------


@po_app.command("add")
def po_add(
    path: Path = typer.Argument(..., help="A YAML or JSON PO: po, client, received_on, lines[]."),
) -> None:
    """Enter a customer PO with its lines and their flowdowns."""
    order = _load(path, PurchaseOrderIn)
    with _services() as (_, clients, _t):
        _print(clients.add_po(order, actor=actor()).model_dump(mode="json", by_alias=True))


@po_app.command("show")
def po_show(po: str) -> None:
    """A PO with its lines, flowdowns, reviews, travelers and what came back from the floor."""
    with _services() as (settings, clients, travelers):
        order = clients.po(po)
        if order is None:
            raise _fail(f"no PO {po}")
        shown = order.model_dump(mode="json", by_alias=True)
        with psycopg.connect(smart_settings.database_url(settings), autocommit=True) as conn:
            for line, held in zip(shown["lines"], order.lines, strict=True):
                traveler = travelers.latest(po, held.line)
                line["traveler"] = traveler.model_dump(mode="json", by_alias=True) if traveler else None
                line["job"] = job_view.job_view(
                    conn,
                    po=po,
                    line=held.line,
                    serials=held.serials,
                    traveler=travelers.released(po, held.line) or traveler,
                ).to_json()
        _print(shown)


@po_app.command("list")
def po_list(
    q: str = typer.Argument("", help="PO or part number prefix."),
    client: str | None = typer.Option(None, help="Only this client's."),
    limit: int = typer.Option(50, min=1),
) -> None:
    """PO lines, soonest due first."""
    with _services() as (_, clients, _t):
        for line in clients.search(q, client=client, limit=limit):
            review = "reviewed" if line.reviewed else "review open"
            released = f"released v{line.released_version}" if line.released_version else "not released"
            typer.echo(
                f"{line.po:<12} {line.line:<4} {line.client:<10} "
                f"{line.part:<12} {line.quantity:>5} {line.unit.value:<4}"
                f" due {line.due_date}  {review}, {released}"
            )


@po_app.command("review")
def po_review(
    po: str,
    line: str,
    accept: bool = typer.Option(..., "--accept/--reject", help="The outcome of the contract review."),
    notes: str = typer.Option("", help="What was checked (capability, clauses, risks)."),
) -> None:
    """Record the contract review of a line as it is now (AS9100D 8.2.3); the reviewer is you."""
    review = ReviewIn(outcome=Outcome.ACCEPTED if accept else Outcome.REJECTED, notes=notes)
    with _services() as (_, clients, _t):
        _print(clients.review(po, line, review, actor=actor()).model_dump(mode="json", by_alias=True))


@po_app.command("release")
def po_release(po: str, line: str) -> None:
    """Release a reviewed line: its records go to exactly the stations on its traveler."""
    with _services() as (settings, clients, travelers):
        released = asyncio.run(_release(settings, clients, travelers, po, line))
    _print(released.to_json())


async def _release(
    settings: Settings, clients: ClientManager, travelers: Travelers, po: str, line: str
) -> release_store.Released:
    connection = await hub_nats(settings, name="smart-po-release")
    try:
        handoff = release_store.HandoffRelease(
            smart_settings.database_url(settings),
            clients=clients,
            travelers=travelers,
            js=connection.jetstream(),
            ledger=ServiceNodeLog(
                settings.state_dir / "ledger", KeyStore(settings.key_directory), node=HANDOFF_CENTRAL
            ),
        )
        return await handoff.release(po, line, actor=actor())
    except Refused as err:
        raise _fail(err) from err
    finally:
        await connection.close()


@po_app.command("import")
def po_import(
    path: Path, apply: bool = typer.Option(False, "--apply", help="Write when the file has no problem.")
) -> None:
    """Import POs and lines from CSV or XLSX; a dry run (every problem by row and column) unless --apply."""
    _import(path, importing.What.LINES, apply=apply)


# -- travelers ----------------------------------------------------------------------------------


@traveler_app.command("set")
def traveler_set(
    po: str,
    line: str,
    path: Path = typer.Argument(..., help="YAML or JSON: operations[] (or template), reason."),
    reason: str | None = typer.Option(None, help="Why (required for a new revision after release)."),
) -> None:
    """Write the line's draft traveler (a new revision once released)."""
    traveler = _load(path, TravelerIn)
    if reason:
        traveler = traveler.model_copy(update={"reason": reason})
    with _services() as (_, _c, travelers):
        _print(travelers.save(po, line, traveler, actor=actor()).model_dump(mode="json", by_alias=True))


@traveler_app.command("show")
def traveler_show(po: str, line: str, all_revisions: bool = typer.Option(False, "--all")) -> None:
    with _services() as (_, _c, travelers):
        found = travelers.revisions(po, line)
        if not found:
            raise _fail(f"PO {po} line {line} has no traveler")
        _print([t.model_dump(mode="json", by_alias=True) for t in (found if all_revisions else found[-1:])])


@traveler_app.command("template")
def traveler_template(
    path: Path = typer.Argument(..., help="YAML or JSON: name, part or process, operations[]."),
) -> None:
    """Save a route template for a part or a process."""
    template = _load(path, TemplateIn)
    with _services() as (_, _c, travelers):
        _print(travelers.add_template(template, actor=actor()).model_dump(mode="json", by_alias=True))


@traveler_app.command("procedure")
def traveler_procedure(
    procedure: str,
    revision: str,
    method: str = typer.Option(..., help="The NDT method or process (PT, MT, UT, HT …)."),
    approved_by: str = typer.Option(..., help="The Level 3 who approved it (their station person id)."),
    validated: bool = typer.Option(False, "--validated/--not-validated"),
) -> None:
    """Record an approved procedure revision; travelers may name only the current one."""
    try:
        value = ProcedureIn(
            id=procedure, revision=revision, method=method, approved_by=approved_by, validated=validated
        )
    except ValidationError as err:
        raise _fail(err) from err
    with _services() as (_, _c, travelers):
        _print(travelers.approve_procedure(value, actor=actor()).model_dump(mode="json"))
