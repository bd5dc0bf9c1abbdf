"""``smart maintenance``: MaintenanceHub from a terminal (register, calibrations, surveys, orders, recall).

The same service as the hub pages and ``/api/v1``, on the hub database the
settings name, recording on the ``maintenance-hub`` ledger node; the actor is
``cli:<user>``. Commands that change what a station judges publish through the
hub's NATS (``station-records``), as the pages do. Closing an order and a
recall disposition are signed with a credential file (the token SMART-ID
issued the person), which is verified against the issuer keys on the hub's
NATS: a name typed here proves nothing.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import typer

from smart import settings as smart_settings
from smart.cli import work as work_cli
from smart.hub.clients.store import Refused
from smart.hub.maintenance import calibration_import, importing, schedule, service
from smart.hub.maintenance import store as maintenance_store
from smart.hub.maintenance.models import (
    CalibrationIn,
    DispositionIn,
    EquipmentIn,
    OrderIn,
    SignedIn,
    SurveyIn,
)
from smart.hub.service_log import ServiceNodeLog
from smart.keys import KeyStore

app = typer.Typer(
    help="MaintenanceHub: equipment, calibrations, surveys, orders, due dates, recall.", no_args_is_help=True
)
app.callback()(work_cli._logs)
T = TypeVar("T")


@asynccontextmanager
async def _hub() -> AsyncIterator[maintenance_store.MaintenanceHub]:
    settings = smart_settings.load()
    try:
        url = smart_settings.database_url(settings)
        await asyncio.to_thread(maintenance_store.migrate, url)
    except (ValueError, psycopg.Error) as err:
        raise work_cli._fail(f"cannot reach the hub database: {err}") from err
    connection = await work_cli.hub_nats(settings, name="smart-maintenance")
    js = connection.jetstream()
    hub = maintenance_store.MaintenanceHub(
        url,
        ledger=ServiceNodeLog(
            settings.state_dir / "ledger", KeyStore(settings.key_directory), node=maintenance_store.NODE
        ),
        schedule=await asyncio.to_thread(schedule.Schedule.of_folder, settings.contracts_dir),
        stations=settings.station_ids,
        js=js,
        verifiers=service.kv_verifiers(js),
        zone=settings.shop_zone,
        pool_size=1,
    )
    try:
        yield hub
        await hub.publish_pending()
    except Refused as err:
        raise work_cli._fail(err) from err
    finally:
        hub.close()
        await connection.close()


def _run(call: Callable[[maintenance_store.MaintenanceHub], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _hub() as hub:
            return await call(hub)

    return asyncio.run(go())


def _sync(call: Callable[[maintenance_store.MaintenanceHub], T]) -> T:
    async def wrapped(hub: maintenance_store.MaintenanceHub) -> T:
        return await asyncio.to_thread(call, hub)

    return _run(wrapped)


def _credential(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise work_cli._fail(f"{path}: {err}") from err


def _json(value: Any) -> Any:
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


@app.command("register")
def register(file: Path = typer.Argument(..., help="YAML/JSON: asset_id, kind, station, serial, …")) -> None:
    """Add or change an asset of the register; its station receives it."""
    item = work_cli._load(file, EquipmentIn)
    work_cli._print(_json(_sync(lambda hub: hub.register(item, actor=work_cli.actor()))))


@app.command("list")
def list_(station: str | None = typer.Option(None, help="Only this station's equipment.")) -> None:
    """The register (``blocked``: last calibration out of tolerance)."""
    work_cli._print(_json(_sync(lambda hub: hub.register_list(station=station))))


@app.command("calibrate")
def calibrate(
    asset_id: str,
    file: Path = typer.Argument(
        ..., help="YAML/JSON: calibrated_at, lab, certificate_number, traceability, …"
    ),
    certificate: Path | None = typer.Option(
        None, help="The certificate's file (PDF or image), kept with it."
    ),
) -> None:
    """Record a calibration; one out of tolerance prints the jobs to review and blocks the asset."""
    entered = work_cli._load(file, CalibrationIn)
    if certificate is not None:
        try:
            data = certificate.read_bytes()
        except OSError as err:
            raise work_cli._fail(f"{certificate}: {err}") from err
        kind = mimetypes.guess_type(certificate.name)[0] or "application/octet-stream"
        attached = {
            "name": certificate.name,
            "content_type": kind,
            "data_base64": base64.b64encode(data).decode(),
        }
        entered = CalibrationIn.model_validate({**entered.model_dump(), "certificate": attached})
    view, found = _sync(lambda hub: hub.record_calibration(asset_id, entered, actor=work_cli.actor()))
    work_cli._print({"calibration": _json(view), "recall": _json(found) if found else None})


@app.command("survey")
def survey(
    asset_id: str, file: Path = typer.Argument(..., help="YAML/JSON: survey (TUS|SAT), surveyed_at, passed")
) -> None:
    """Record a furnace's TUS or SAT; the next is due by the contract's table."""
    entered = work_cli._load(file, SurveyIn)
    work_cli._print(_json(_sync(lambda hub: hub.record_survey(asset_id, entered, actor=work_cli.actor()))))


@app.command("order")
def order(asset_id: str, task: str, reason: str = typer.Option("", help="Why it is opened.")) -> None:
    """Open a maintenance order."""
    entered = OrderIn(task=task, reason=reason)
    work_cli._print(_json(_sync(lambda hub: hub.open_order(asset_id, entered, actor=work_cli.actor()))))


@app.command("done")
def done(
    order_id: int,
    credential: Path = typer.Option(..., help="File holding the technician's credential token."),
    notes: str = typer.Option(""),
) -> None:
    """Close an order as done by the credential's holder; the station's usage counter starts again."""
    signed = SignedIn(credential=_credential(credential), notes=notes)
    work_cli._print(_json(_run(lambda hub: hub.complete_order(order_id, signed, actor=work_cli.actor()))))


@app.command("due")
def due(days: int = typer.Option(30, help="How many days ahead (30, 60, 90, …).")) -> None:
    """What falls due in the next DAYS days, overdue first."""
    work_cli._print(_json(_sync(lambda hub: hub.due(days, limit=1000)[0])))


@app.command("recall")
def recall(
    open_only: bool = typer.Option(False, "--open", help="Only reviews without a disposition."),
) -> None:
    """The impact reviews of instruments found out of tolerance."""
    work_cli._print(_json(_sync(lambda hub: hub.reviews(open_only=open_only))))


@app.command("dispose")
def dispose(
    review_id: int,
    disposition: str = typer.Argument(..., help="no-impact, re-inspect, customer-notified or ncr-opened"),
    credential: Path = typer.Option(..., help="File holding the authorised person's credential token."),
    notes: str = typer.Option(""),
) -> None:
    """Disposition one job's impact review (a Level 3 or the quality manager, by their credential)."""
    body = DispositionIn.model_validate(
        {"disposition": disposition, "credential": _credential(credential), "notes": notes}
    )
    work_cli._print(_json(_run(lambda hub: hub.dispose(review_id, body, actor=work_cli.actor()))))


@app.command("import")
def import_(
    file: Path, apply: bool = typer.Option(False, "--apply", help="Write it (default: a dry run).")
) -> None:
    """Import the register from CSV or XLSX; every problem by row and column; a bad file writes nothing."""
    fmt = "xlsx" if file.suffix.lower() == ".xlsx" else "csv"
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise work_cli._fail(f"{file}: {err}") from err
    checked = _sync(
        lambda hub: importing.run(
            raw, fmt=fmt, hub=hub, actor=work_cli.actor(), dry_run=not apply, file=file.name
        )
    )
    work_cli._print({**checked.to_json(), "written": checked.ok and apply, "today": date.today()})
    if not checked.ok:
        raise typer.Exit(1)


@app.command("import-calibrations")
def import_calibrations(
    file: Path, apply: bool = typer.Option(False, "--apply", help="Write it (default: a dry run).")
) -> None:
    """Import calibrations from CSV or XLSX; every problem by file, row, column; a bad file writes nothing."""
    fmt = "xlsx" if file.suffix.lower() == ".xlsx" else "csv"
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise work_cli._fail(f"{file}: {err}") from err
    checked = _sync(
        lambda hub: calibration_import.run(
            raw, fmt=fmt, hub=hub, actor=work_cli.actor(), dry_run=not apply, file=file.name
        )
    )
    work_cli._print({**checked.to_json(), "written": checked.ok and apply})
    if not checked.ok:
        raise typer.Exit(1)
