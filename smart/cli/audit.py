"""``smart audit``: AuditCentral from the command line: a job's audit packet, and reverse searches.

``smart audit job J-1`` writes the packet as an HTML file, a PDF and the
proofs appendix (``smart verify`` checks it offline); ``smart audit impact``
lists every job an instrument, a person, a lot or a procedure revision
touched, each with the entry that proves it. Reads only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import typer

from smart import logs
from smart import settings as smart_settings
from smart.hub.audit import clientproof, impact, index, packet, render
from smart.hub.audit.service import AuditCentral
from smart.keys import KeyFileError, KeyStore
from smart.ledger import hub_store, trust

app = typer.Typer(help="AuditCentral: a job's Nadcap audit packet from the ledger, and reverse searches.")


def _central(contracts: Path | None = None) -> AuditCentral:
    """AuditCentral on the settings' hub; the intervals from ``contracts``, else ``SMART_CONTRACTS_DIR``."""
    settings = smart_settings.load()
    logs.configure(settings.log_level)
    try:
        url = smart_settings.database_url(settings)
        index.migrate(url)
        keys = KeyStore(settings.key_directory)
        log_key = keys.verifying_key(hub_store.HUB_KEY)
        try:
            admin = keys.verifying_key(trust.ADMIN_KEY)
        except KeyFileError:
            admin = None  # no witness is then established: bundles name none, the page trusts none
        folder = contracts or settings.contracts_dir
        return AuditCentral(url, log_key=log_key, admin=admin, contracts_dir=folder)
    except KeyFileError as err:
        typer.echo(f"no hub public key to prove entries against: {err}", err=True)
        raise typer.Exit(2) from err
    except (ValueError, psycopg.Error) as err:
        typer.echo(f"cannot reach the hub database: {err}", err=True)
        raise typer.Exit(2) from err


@app.command("job")
def job_packet(
    job: str | None = typer.Argument(None, help="A station's job id (e.g. J-1)."),
    po: str | None = typer.Option(None, "--po", help="The customer PO (with --line)."),
    line: str | None = typer.Option(None, "--line", help="The PO line (with --po)."),
    serial: str | None = typer.Option(None, "--serial", help="A part serial."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Directory for the HTML, PDF and proofs files."),
    with_pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also render the PDF (WeasyPrint)."),
    contracts: Path | None = typer.Option(
        None,
        "--contracts",
        help="The contracts' folder: the intervals exams are judged by (default: SMART_CONTRACTS_DIR).",
    ),
) -> None:
    """Build the audit packet of a job (or a PO line, or a serial) as the ledger stood at the work."""
    asked = sum(x is not None for x in (job, serial)) + (po is not None or line is not None)
    if asked != 1 or (po is None) != (line is None):
        typer.echo("name one of: JOB, --po PO --line N, --serial S", err=True)
        raise typer.Exit(2)
    central = _central(contracts)
    try:
        made = central.packet(job=job, po=po, line=line, serial=serial)
        done = central.rendered(made)
    except packet.JobNotFound as err:
        typer.echo(f"not found: {err}", err=True)
        raise typer.Exit(1) from err
    finally:
        central.close()
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / f"{made.slug}.html"
    proofs_path = out / f"{made.slug}-proofs.json"
    html_path.write_text(done.html, encoding="utf-8")
    proofs_path.write_bytes(done.appendix)
    typer.echo(f"wrote {html_path} ({len(made.cited)} entries cited)")
    typer.echo(f"wrote {proofs_path} (check: smart verify {proofs_path} --keys TRUST)")
    if with_pdf:
        pdf_path = out / f"{made.slug}.pdf"
        pdf_path.write_bytes(render.pdf(done.html, appendix=done.appendix))
        typer.echo(f"wrote {pdf_path}")


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD or ISO time)") from err
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@app.command("impact")
def impact_search(
    equipment: str | None = typer.Option(None, "--equipment", help="An instrument's asset id."),
    person: str | None = typer.Option(None, "--person", help="A person's badge."),
    method: str | None = typer.Option(
        None, "--method", help="With --person: only work in this method (PT…)."
    ),
    lot: str | None = typer.Option(None, "--lot", help="A consumable's lot."),
    procedure: str | None = typer.Option(None, "--procedure", help="A procedure id (with --revision)."),
    revision: str | None = typer.Option(None, "--revision", help="The procedure's revision."),
    since: str | None = typer.Option(
        None, "--since", help="Only work at or after this date (last good calibration)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Every job an instrument, person, lot or procedure revision touched, with the entry proving each."""
    try:
        ref = impact.query_ref(
            equipment=equipment, person=person, lot=lot, procedure=procedure, revision=revision
        )
    except ValueError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    central = _central()
    try:
        found = central.impact(ref, since=_date(since), method=method)
    finally:
        central.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ref": ref,
                    "since": since,
                    "method": method,
                    "jobs": [
                        {
                            "station": t.station,
                            "job": t.job,
                            "at": t.at.isoformat(),
                            "entry": t.idx,
                            "po_line": t.po_line,
                            "serials": list(t.serials),
                        }
                        for t in found
                    ],
                }
            )
        )
        return
    typer.echo(f"{ref}: {len(found)} job(s) touched" + (f" since {since}" if since else ""))
    for t in found:
        typer.echo(
            f"  {t.station} {t.job}  {t.at.isoformat()}  PO line {t.po_line or '—'}  "
            f"serials {', '.join(t.serials) or '—'}  proved by entry {t.idx}"
        )


@app.command("coc")
def certificate(
    job: str | None = typer.Argument(None, help="A station's job id."),
    po: str | None = typer.Option(None, "--po", help="The customer PO (with --line)."),
    line: str | None = typer.Option(None, "--line", help="The PO line (with --po)."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Directory for the C of C, bundle and page."),
    shop: str = typer.Option("SMART special-processing shop", "--shop", help="The shop's name, as printed."),
    min_witnesses: int = typer.Option(1, "--min-witnesses", help="Cosignatures the client's page requires."),
) -> None:
    """Print the shipped job's C of C (PDF, with the QR code of its proof bundle), the bundle, and the
    offline page the client checks it with."""
    if (job is None) == (po is None and line is None) or (po is None) != (line is None):
        typer.echo("name one of: JOB, --po PO --line N", err=True)
        raise typer.Exit(2)
    central = _central()
    try:
        made = central.packet(job=job, po=po, line=line)
        proof = central.client_proof(made, min_cosignatures=max(min_witnesses, 1))
        trusted = central.trust()
    except (packet.JobNotFound, clientproof.NotShipped) as err:
        typer.echo(f"not found: {err}", err=True)
        raise typer.Exit(1) from err
    finally:
        central.close()
    out.mkdir(parents=True, exist_ok=True)
    bundle_path = out / f"{made.slug}-shipment-proof.json"
    bundle_path.write_bytes(proof.bundle)
    pdf_path = out / f"{made.slug}-coc.pdf"
    pdf_path.write_bytes(clientproof.certificate_pdf(proof, shop=shop, bundle_name=bundle_path.name))
    page_path = out / "verify-shipment.html"
    page_path.write_text(
        clientproof.verify_page(trusted, shop=shop, min_witnesses=min_witnesses), encoding="utf-8"
    )
    typer.echo(f"wrote {pdf_path} (QR: {proof.qr_text})")
    typer.echo(f"wrote {bundle_path} (entry {proof.index})")
    typer.echo(f"wrote {page_path} (opens offline in any current browser)")
