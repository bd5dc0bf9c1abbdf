"""``smart standards``, ``smart ncr``, ``smart inventory``, ``smart training-matrix``: the hub's means.

The same services as the pages and ``/api/v1``, on the hub database named by
the settings, recording on the same ledger nodes under ``<state_dir>/ledger/``;
the actor is ``cli:<user>``. Approving a procedure revision or dispositioning
an NCR is signed by a badge's own SMART-ID credentials (``--badge`` and
``--tokens FILE``, one token a line, as the badge holds them), verified
against the pinned ``smart-id`` key: the command's user signs nothing. Inputs
come from YAML or JSON files checked by the API's models (a refusal names
the field); the training matrix is a CSV or XLSX checked as a dry run
unless ``--apply``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import typer

from smart import settings as smart_settings
from smart.cli.work import _fail, _load, _logs, _print, actor, hub_nats
from smart.hub import means as means_services
from smart.hub.clients.importing import Format
from smart.hub.clients.store import Refused
from smart.hub.inventory.models import LotIn, MaterialIn
from smart.hub.qa.models import CapaIn, DispositionIn
from smart.hub.standards.models import ProcedureIn, RevisionIn, SpecRevisionIn
from smart.hub.standards.store import APPROVE
from smart.hub.vault import training_matrix
from smart.hub.vault.service import open_smartid
from smart.keys import KeyStore
from smart.settings import Settings

standards_app = typer.Typer(help="Specs and procedures (StandardsCentral).", no_args_is_help=True)
ncr_app = typer.Typer(help="NCRs, dispositions, CAPA, first-pass yield (QACentral).", no_args_is_help=True)
inventory_app = typer.Typer(help="Materials, lots, purchase requests (InventoryHub).", no_args_is_help=True)
matrix_app = typer.Typer(help="The training matrix into SMART-ID.", no_args_is_help=True)
for _app in (standards_app, ncr_app, inventory_app, matrix_app):
    _app.callback()(_logs)


@asynccontextmanager
async def _means(settings: Settings | None = None) -> AsyncIterator[means_services.MeansServices]:
    settings = settings or smart_settings.load()
    url = smart_settings.database_url(settings)
    try:
        means_services.migrate(url)
    except (ValueError, psycopg.Error) as err:
        raise _fail(f"cannot reach the hub database: {err}") from err
    connection = await hub_nats(settings, name="smart-means-cli")
    with open_smartid(settings) as smartid:
        services = means_services.MeansServices(
            url,
            keys=KeyStore(settings.key_directory),
            ledger_dir=settings.state_dir / "ledger",
            stations=settings.station_ids,
            js=connection.jetstream(),
            smartid=smartid,
            zone=settings.shop_zone,
        )
        try:
            yield services
        except Refused as err:
            raise _fail(err) from err
        finally:
            await services.stop()
            await connection.close()


def _run(work: Any) -> None:
    asyncio.run(work)


def _tokens(path: Path) -> tuple[str, ...]:
    try:
        return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError as err:
        raise _fail(f"{path}: {err}") from err


# -- standards ----------------------------------------------------------------------------------


@standards_app.command("spec")
def spec_add(path: Path) -> None:
    """Record a spec revision (YAML/JSON: spec, revision, title, effective_on, supersedes)."""
    body = _load(path, SpecRevisionIn)

    async def go() -> None:
        async with _means() as means:
            _print(means.standards.add_spec_revision(body, actor=actor()).model_dump(mode="json"))

    _run(go())


@standards_app.command("procedure")
def procedure_add(path: Path) -> None:
    """Record a procedure or technique sheet (YAML/JSON: id, method, title, stations)."""
    body = _load(path, ProcedureIn)

    async def go() -> None:
        async with _means() as means:
            _print(means.standards.add_procedure(body, actor=actor()).model_dump(mode="json"))

    _run(go())


@standards_app.command("draft")
def draft(procedure: str, path: Path) -> None:
    """Draft a revision (YAML/JSON: revision, effective_on, supersedes, validated, spec, spec_revision)."""
    body = _load(path, RevisionIn)

    async def go() -> None:
        async with _means() as means:
            _print(means.standards.draft(procedure, body, actor=actor()).model_dump(mode="json"))

    _run(go())


@standards_app.command("approve")
def approve(
    procedure: str,
    revision: str,
    badge: str = typer.Option(..., help="The Level 3's badge."),
    tokens: Path = typer.Option(..., help="A file of the badge's SMART-ID tokens, one a line."),
) -> None:
    """Sign a revision with a Level 3's verified credential; it reaches stations once in force."""

    async def go() -> None:
        async with _means() as means:
            held = means.standards.procedure(procedure)
            if held is None:
                raise _fail(f"procedure: no procedure {procedure}")
            signature = means.signer.sign(APPROVE, badge=badge, tokens=_tokens(tokens), method=held.method)
            _print(
                means.standards.approve(procedure, revision, signature, actor=actor()).model_dump(mode="json")
            )
            _print(await means.standards_publisher.sweep())

    _run(go())


@standards_app.command("show")
def show(procedure: str) -> None:
    async def go() -> None:
        async with _means() as means:
            _print([r.model_dump(mode="json") for r in means.standards.revisions(procedure)])

    _run(go())


@standards_app.command("sweep")
def standards_sweep() -> None:
    """Give every station the revisions in force today (the hub does this every minute)."""

    async def go() -> None:
        async with _means() as means:
            _print(await means.standards_publisher.sweep())

    _run(go())


# -- NCRs ---------------------------------------------------------------------------------------


@ncr_app.command("list")
def ncr_list(open_only: bool = typer.Option(False, "--open")) -> None:
    async def go() -> None:
        async with _means() as means:
            means.ncr_index.index_once()
            _print([n.model_dump(mode="json") for n in means.qa.ncrs(open_only=open_only)])

    _run(go())


@ncr_app.command("disposition")
def ncr_disposition(
    ncr: str,
    path: Path,
    badge: str = typer.Option(..., help="The signer's badge (a Level 3 in the station's method)."),
    tokens: Path = typer.Option(..., help="A file of the badge's SMART-ID tokens, one a line."),
) -> None:
    """Disposition an NCR (YAML/JSON: disposition, design_authority_approval, marking, close, evidence)."""
    body = _load(path, DispositionIn)

    async def go() -> None:
        async with _means() as means:
            means.ncr_index.index_once()
            held = means.qa.ncr(ncr)
            if held is None:
                raise _fail(f"ncr: no NCR {ncr} has reached the hub")
            method = means.station_method(held.station)
            if method is None:
                raise _fail(f"signer: the hub knows no method for {held.station}")
            signature = means.signer.sign(
                APPROVE, badge=badge, tokens=_tokens(tokens), method=method, field="signer"
            )
            _print(
                (await means.decisions.decide(ncr, body, signature, actor=actor())).model_dump(mode="json")
            )

    _run(go())


@ncr_app.command("capa")
def capa(path: Path) -> None:
    """Open a CAPA (YAML/JSON: id, ncrs, root_cause, action, owner, due_on)."""
    body = _load(path, CapaIn)

    async def go() -> None:
        async with _means() as means:
            _print(means.qa.open_capa(body, actor=actor()).model_dump(mode="json"))

    _run(go())


@ncr_app.command("yield")
def first_pass_yield() -> None:
    async def go() -> None:
        async with _means() as means:
            means.ncr_index.index_once()
            _print([y.model_dump() for y in means.qa.first_pass_yield()])

    _run(go())


# -- inventory ----------------------------------------------------------------------------------


@inventory_app.command("material")
def material(path: Path) -> None:
    """Add a material (YAML/JSON: id, form, unit, shelf_life, in_use_checks, supplier, min_stock, …)."""
    body = _load(path, MaterialIn)

    async def go() -> None:
        async with _means() as means:
            _print(
                (await means.inventory_publisher.add_material(body, actor=actor())).model_dump(mode="json")
            )

    _run(go())


@inventory_app.command("receive")
def receive(path: Path) -> None:
    """Receive a lot (YAML/JSON: id, material, supplier, certificate, received_on, expires_on, …)."""
    body = _load(path, LotIn)

    async def go() -> None:
        async with _means() as means:
            _print((await means.inventory_publisher.receive(body, actor=actor())).model_dump(mode="json"))

    _run(go())


@inventory_app.command("import")
def lots_import(
    path: Path, apply: bool = typer.Option(False, "--apply", help="Write when the file has no problem.")
) -> None:
    """Receive lots from CSV or XLSX; a dry run (every problem by row and column) unless --apply."""
    from smart.hub.inventory import importing as lot_import

    fmt = Format.XLSX if path.suffix.lower() == ".xlsx" else Format.CSV
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise _fail(f"{path}: {err}") from err

    async def go() -> None:
        async with _means() as means:
            checked = lot_import.check(raw, fmt, inventory=means.inventory, file=path.name)
            for problem in checked.problems:
                typer.echo(f"{path}: row {problem.row}, column {problem.column}: {problem.message}", err=True)
            if not checked.ok:
                typer.echo(f"{path}: {len(checked.problems)} problems; nothing written", err=True)
                raise typer.Exit(1)
            if apply:
                await means.inventory_publisher.receive_many(list(checked.lots), actor=actor())
            verb = "received" if apply else "would receive (dry run; --apply to write)"
            typer.echo(f"{path}: {verb} {len(checked.lots)} lots")

    _run(go())


@inventory_app.command("lots")
def lots() -> None:
    async def go() -> None:
        async with _means() as means:
            _print([lot.model_dump(mode="json") for lot in means.inventory.lots()])

    _run(go())


@inventory_app.command("sweep")
def inventory_sweep() -> None:
    """Withdraw the lots expiring today from every station; reorder signals to purchase requests."""

    async def go() -> None:
        async with _means() as means:
            _print({"withdrawn": await means.inventory_publisher.sweep()})

    _run(go())


# -- the training matrix ------------------------------------------------------------------------


@matrix_app.command("import")
def matrix_import(
    path: Path, apply: bool = typer.Option(False, "--apply", help="Write when the file has no problem.")
) -> None:
    """Import the training matrix (CSV or XLSX) into SMART-ID; a dry run unless --apply."""
    fmt = Format.XLSX if path.suffix.lower() == ".xlsx" else Format.CSV
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise _fail(f"{path}: {err}") from err
    settings = smart_settings.load()
    with open_smartid(settings) as smartid:
        checked = training_matrix.check(
            raw, fmt, smartid=smartid, stations=settings.station_ids, file=path.name
        )
        for problem in checked.problems:
            typer.echo(f"{path}: row {problem.row}, column {problem.column}: {problem.message}", err=True)
        if not checked.ok:
            typer.echo(f"{path}: {len(checked.problems)} problems; nothing written", err=True)
            raise typer.Exit(1)
        if not apply:
            shown = checked.to_json()
            typer.echo(f"{path}: would import {shown['people']} people, {shown['records']} records (dry run)")
            return
        counts = training_matrix.run(checked, smartid=smartid, actor=actor())
        typer.echo(
            f"{path}: imported {counts['people']} people, {counts['records']} records, "
            f"{counts['credentials']} credentials"
        )
