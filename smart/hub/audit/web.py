"""AuditCentral's hub pages: audit search, the packet with its downloads, reverse searches, the client's page.

Every page is a GET behind sign-in with ``audit.read`` (an auditor's role
has it and nothing that writes): nothing here changes the shop's records.
Each request opens its own connection (app role) and brings the audit index
up to date first, so a job shipped a moment ago is found.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.audit import clientproof, impact, packet, printing, render
from smart.hub.audit.service import AuditCentral, SharedIndex
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard
from smart.keys import KeyFileError, KeyStore, VerifyingKey
from smart.ledger import hub_store
from smart.ledger.trust import ADMIN_KEY
from smart.settings import Settings


def _asked(job: str | None, po: str | None, line: str | None, serial: str | None) -> dict[str, str]:
    asked = {k: v for k, v in (("job", job), ("po", po), ("line", line), ("serial", serial)) if v}
    if not asked or ("po" in asked) != ("line" in asked):
        raise HTTPException(status_code=422, detail="name a job, a PO and its line, or a serial")
    return asked


def _day(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"{field}: {text!r} is not a date (YYYY-MM-DD)") from err


def audit_keys(settings: Settings) -> dict[str, Any]:
    """The keys the pages prove with (the log's, the administrator's) and the contracts' folder."""
    keys = KeyStore(settings.key_directory)
    try:
        admin: VerifyingKey | None = keys.verifying_key(ADMIN_KEY)
    except KeyFileError:
        admin = None
    return {
        "log_key": keys.verifying_key(hub_store.HUB_KEY),
        "admin": admin,
        "contracts_dir": settings.contracts_dir,  # SMART_CONTRACTS_DIR, never the working directory's
    }


def router(
    url: str,
    guard: Guard,
    *,
    log_key: VerifyingKey,
    admin: VerifyingKey | None,
    contracts_dir: Path | None = None,
    shop: str = "SMART special-processing shop",
) -> APIRouter:
    routes = APIRouter()
    read = guard.requires(Permission.AUDIT_READ)

    shared = SharedIndex(url)  # one follower of the log for every request

    def with_central(work: Callable[[AuditCentral], Any]) -> Any:
        central = AuditCentral(
            url, log_key=log_key, admin=admin, contracts_dir=contracts_dir, shared_index=shared
        )
        try:
            central.refresh()
            return work(central)
        finally:
            central.close()

    async def run(work: Callable[[AuditCentral], Any]) -> Any:
        try:
            return await run_in_threadpool(with_central, work)
        except packet.JobNotFound as err:
            raise HTTPException(status_code=404, detail=str(err)) from err
        except clientproof.NotShipped as err:
            raise HTTPException(status_code=404, detail=str(err)) from err

    @routes.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    async def search_page(
        request: Request,
        job: str = "",
        po: str = "",
        line: str = "",
        part: str = "",
        serial: str = "",
        person: str = "",
        equipment: str = "",
        on: str = "",
        login: Login = Depends(read),
    ) -> HTMLResponse:
        day = _day(on, "on")
        found = await run(
            lambda c: impact.search(
                c.conn,
                job=job or None,
                po=po or None,
                line=line or None,
                part=part or None,
                serial=serial or None,
                person=person or None,
                equipment=equipment or None,
                on=day,
            )
        )
        q = {
            "job": job,
            "po": po,
            "line": line,
            "part": part,
            "serial": serial,
            "person": person,
            "equipment": equipment,
            "on": on,
        }
        return TEMPLATES.TemplateResponse(
            request, "audit/search.html", {"page": "Audit", "login": login, "found": found, "q": q}
        )

    def _downloads(asked: dict[str, str]) -> list[tuple[str, str]]:
        query = urlencode(asked)
        return [
            ("HTML file", f"/audit/packet.html?{query}"),
            ("PDF", f"/audit/packet.pdf?{query}"),
            ("proofs (smart verify)", f"/audit/proofs.json?{query}"),
            ("C of C", f"/audit/coc.pdf?{query}"),
            ("shipment proof", f"/audit/shipment-proof.json?{query}"),
        ]

    @routes.get("/audit/packet", response_class=HTMLResponse, include_in_schema=False)
    async def packet_page(
        job: str | None = None,
        po: str | None = None,
        line: str | None = None,
        serial: str | None = None,
        _: Login = Depends(read),
    ) -> HTMLResponse:
        asked = _asked(job, po, line, serial)
        done = await run(lambda c: c.rendered(c.packet(**asked), downloads=_downloads(asked)))
        return HTMLResponse(done.html)

    @routes.get("/audit/packet.html", include_in_schema=False)
    async def packet_file(
        job: str | None = None,
        po: str | None = None,
        line: str | None = None,
        serial: str | None = None,
        _: Login = Depends(read),
    ) -> Response:
        asked = _asked(job, po, line, serial)
        done = await run(lambda c: c.rendered(c.packet(**asked)))
        return Response(
            done.html.encode(),
            media_type="text/html; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{done.packet.slug}.html"'},
        )

    @routes.get("/audit/packet.pdf", include_in_schema=False)
    async def packet_pdf(
        job: str | None = None,
        po: str | None = None,
        line: str | None = None,
        serial: str | None = None,
        _: Login = Depends(read),
    ) -> Response:
        asked = _asked(job, po, line, serial)
        done = await run(lambda c: c.rendered(c.packet(**asked)))
        pdf = await run_in_threadpool(render.pdf, done.html, appendix=done.appendix)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{done.packet.slug}.pdf"'},
        )

    @routes.get("/audit/proofs.json", include_in_schema=False)
    async def packet_proofs(
        job: str | None = None,
        po: str | None = None,
        line: str | None = None,
        serial: str | None = None,
        _: Login = Depends(read),
    ) -> Response:
        asked = _asked(job, po, line, serial)
        done = await run(lambda c: c.rendered(c.packet(**asked)))
        return Response(
            done.appendix,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{done.packet.slug}-proofs.json"'},
        )

    @routes.get("/audit/coc.pdf", include_in_schema=False)
    async def coc_pdf(
        job: str | None = None, po: str | None = None, line: str | None = None, _: Login = Depends(read)
    ) -> Response:
        asked = _asked(job, po, line, None)

        def made(c: AuditCentral) -> tuple[str, bytes]:
            found = c.packet(**asked)
            printed = printing.certificates(c.conn, po=found.po, line=found.line) if found.po else []
            if printed:  # the C of C printed at shipping, as the client received it
                held = printing.stored(c.conn, printed[-1].ledger_idx)
                if held is not None:
                    return found.slug, held[1]
            proof = c.client_proof(found)
            name = f"{found.slug}-shipment-proof.json"
            return found.slug, clientproof.certificate_pdf(proof, shop=shop, bundle_name=name)

        slug, pdf = await run(made)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{slug}-coc.pdf"'},
        )

    @routes.get("/audit/certificates", response_class=HTMLResponse, include_in_schema=False)
    async def certificates_page(
        request: Request, po: str = "", line: str = "", login: Login = Depends(read)
    ) -> HTMLResponse:
        """Every C of C printed at shipping, newest first (of one PO line when asked)."""
        found = await run(lambda c: printing.certificates(c.conn, po=po or None, line=line or None))
        return TEMPLATES.TemplateResponse(
            request,
            "audit/certificates.html",
            {"page": "Certificates of Conformance", "login": login, "found": found, "po": po, "line": line},
        )

    @routes.get("/audit/certificates/{ledger_idx}.pdf", include_in_schema=False)
    async def certificate_pdf(ledger_idx: int, _: Login = Depends(read)) -> Response:
        held = await run(lambda c: printing.stored(c.conn, ledger_idx))
        if held is None:
            raise HTTPException(status_code=404, detail=f"no C of C printed for shipment entry {ledger_idx}")
        printed, pdf, _bundle = held
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{printed.po}-{printed.line}-coc.pdf"',
            },
        )

    @routes.get("/audit/certificates/{ledger_idx}.json", include_in_schema=False)
    async def certificate_bundle(ledger_idx: int, _: Login = Depends(read)) -> Response:
        held = await run(lambda c: printing.stored(c.conn, ledger_idx))
        if held is None:
            raise HTTPException(status_code=404, detail=f"no C of C printed for shipment entry {ledger_idx}")
        printed, _pdf, bundle = held
        return Response(
            bundle,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{printed.po}-{printed.line}-proof.json"'},
        )

    @routes.get("/audit/shipment-proof.json", include_in_schema=False)
    async def shipment_proof(
        job: str | None = None, po: str | None = None, line: str | None = None, _: Login = Depends(read)
    ) -> Response:
        asked = _asked(job, po, line, None)
        slug, raw = await run(lambda c: (lambda m: (m.slug, c.client_proof(m).bundle))(c.packet(**asked)))
        return Response(
            raw,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{slug}-shipment-proof.json"'},
        )

    @routes.get("/audit/verify-shipment.html", include_in_schema=False)
    async def verify_page(_: Login = Depends(read)) -> Response:
        text = await run(lambda c: clientproof.verify_page(c.trust(), shop=shop))
        return Response(
            text.encode(),
            media_type="text/html; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="verify-shipment.html"'},
        )

    def _impact(
        kind: str, id_: str, revision: str, method: str, since: str
    ) -> tuple[str, list[impact.Touched]]:
        try:
            ref = impact.query_ref(**{kind: id_}, revision=revision or None)
        except (TypeError, ValueError) as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        day = _day(since, "since")
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) if day else None
        return ref, run_sync_impact(ref, start, method or None)

    def run_sync_impact(ref: str, start: datetime | None, method: str | None) -> list[impact.Touched]:
        found: list[impact.Touched] = with_central(
            lambda c: impact.touched(c.conn, ref, since=start, method=method)
        )
        return found

    @routes.get("/audit/impact", response_class=HTMLResponse, include_in_schema=False)
    async def impact_page(
        request: Request,
        kind: str = "equipment",
        id: str = "",
        revision: str = "",
        method: str = "",
        since: str = "",
        login: Login = Depends(read),
    ) -> HTMLResponse:
        ref, found = await run_in_threadpool(_impact, kind, id, revision, method, since)
        query = urlencode({"kind": kind, "id": id, "revision": revision, "method": method, "since": since})
        return TEMPLATES.TemplateResponse(
            request,
            "audit/impact.html",
            {
                "page": "Reverse search",
                "login": login,
                "found": found,
                "ref": ref,
                "since": since,
                "method": method,
                "query": query,
            },
        )

    @routes.get("/api/v1/audit/impact", tags=["AuditCentral"])
    async def impact_json(
        kind: str = "equipment",
        id: str = "",
        revision: str = "",
        method: str = "",
        since: str = "",
        _: Login = Depends(read),
    ) -> dict[str, Any]:
        """Every job the instrument, person, lot or procedure revision touched, with its proving entry."""
        ref, found = await run_in_threadpool(_impact, kind, id, revision, method, since)
        return {
            "ref": ref,
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

    return routes
