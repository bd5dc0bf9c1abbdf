"""ComplianceCentral on the Floor hub: the indexes running, their pages, `/api/v1`; and the contract flags.

The indexes (:mod:`smart.hub.compliance.index`) follow the hub log on connections of their own
(the app role). The pages and API sit behind sign-in: ``records.read`` to read refusals (quality,
Level 3s, auditors, admins); the badge of the person refused is personal data, shown only to
logins that may read people (``people.read``), and never in a CSV export without it.

PolicyCentral's pages (contract history, "in force at", the approval page) are on the Vault
beside SMART-ID (:mod:`smart.hub.compliance.policy`); :func:`policy_router` builds them from the
hub's ``contract-approvals`` bucket and the stations' activations. An emergency revision whose
countersignature is due or overdue is flagged on every hub page: a banner from :func:`flags`,
kept by a :class:`ContractFlags` in each hub role that reads the bucket (Vault and Floor), so a
role running in a pod of its own flags its own pages too; the Vault's also publishes each flag to
Business (:mod:`smart.hub.compliance.flags`), which reads no approvals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from nats.aio.client import Client as NatsClient
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission, allows
from smart.contracts import approval, history
from smart.hub.compliance import index
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, ContractFlag, Guard, contract_flags, show_contract_flags
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.compliance")


def flags() -> list[str]:
    """The banner lines every hub page shows (emergency revisions not yet countersigned)."""
    return contract_flags()


def flags_of(records: list[approval.Record], now: datetime) -> list[ContractFlag]:
    """Each distributed emergency revision whose countersignature is due or overdue at ``now``."""
    found = []
    for record in records:
        entry = record.find(record.distributed) if record.distributed else None
        if entry is None:
            continue
        state = entry.state(now)
        if state in (approval.COUNTERSIGN_DUE, approval.COUNTERSIGN_OVERDUE):
            first = entry.approvals[0]
            found.append(
                ContractFlag(
                    contract=record.contract,
                    revision=entry.revision,
                    overdue=state == approval.COUNTERSIGN_OVERDUE,
                    deadline=first.at + approval.COUNTERSIGN_WITHIN,
                    approved_by=first.badge,
                )
            )
    return found


#: Where a role reads the two-person records (the hub's ``contract-approvals`` bucket).
Approvals = Callable[[], Awaitable[approval.KvApprovalStore]]
#: The time the flags and the two-person state are judged at (a test moves it past 24 h).
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


#: Where a role sends what it flagged on, beside its own pages (the Vault: to Business, one way).
FlagsOut = Callable[[list[approval.Record], list[ContractFlag]], Awaitable[None]]


class ContractFlags:
    """Keeps the banner every hub page shows: reads the approvals every few seconds, judged at ``clock``.

    With ``send`` (the Vault's PolicyCentral), each reading is also handed on after the banner is
    set (:class:`smart.hub.compliance.flags.FlagPublisher`: Business, which reads no approvals).
    """

    def __init__(
        self, approvals: Approvals, clock: Clock = wall_clock, *, send: FlagsOut | None = None
    ) -> None:
        self.approvals = approvals
        self.clock = clock
        self.send = send

    async def refresh(self) -> list[str]:
        records = await (await self.approvals()).all()
        flagged = flags_of(records, self.clock())
        show_contract_flags(flagged)
        if self.send is not None:
            try:
                await self.send(records, flagged)
            except Exception as err:  # the feed away: this hub's pages are flagged; the next reading resends
                log.warning("compliance.flags_not_published", error=f"{type(err).__name__}: {err}"[:200])
        return contract_flags()

    async def run(self, every_s: float = 5.0) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as err:  # NATS away a moment: the banner keeps what it showed
                log.warning("compliance.flags_not_read", error=str(err)[:200])
            await asyncio.sleep(every_s)

    @staticmethod
    def clear() -> None:
        # The banner is the process's (every page's template reads it): a stopped hub's flags must not
        # stay on the pages of the next hub this process runs (tests run many, one after another).
        show_contract_flags([])


class ComplianceCentral:
    """The two indexes and the flags, running beside the other hub services."""

    def __init__(
        self,
        owner_url: str,
        app_url: str,
        connection: NatsClient,
        *,
        clock: Clock = wall_clock,
        migrate: bool = True,
    ) -> None:
        self.owner_url = owner_url
        self.migrate = migrate
        self.app_url = app_url
        self.connection = connection
        self.flags = ContractFlags(self.approvals, clock)
        self.tasks: list[asyncio.Task[None]] = []
        self.indexes: list[index.DecisionIndex | index.ActivationIndex] = []

    async def approvals(self) -> approval.KvApprovalStore:
        return approval.KvApprovalStore(await approval.bucket(self.connection.jetstream()))

    async def start(self) -> None:
        if self.migrate:  # else migrated by the owner beforehand (HubServices.prepare)
            await asyncio.to_thread(index.migrate, self.owner_url)
        records = await (await self.approvals()).all()
        specs = [r.spec for record in records for r in record.revisions]
        decisions = await asyncio.to_thread(
            lambda: index.DecisionIndex(
                psycopg.connect(self.app_url, autocommit=True),
                url=self.app_url,
                standards=index.rule_standards(specs),
            )
        )
        activations = await asyncio.to_thread(index.ActivationIndex.connect, self.app_url)
        self.indexes = [decisions, activations]
        self.tasks = [
            asyncio.create_task(decisions.run(), name="compliance-decisions"),
            asyncio.create_task(activations.run(), name="contract-activations"),
            asyncio.create_task(self.flags.run(), name="contract-flags"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for found in self.indexes:
            found.close()
        ContractFlags.clear()

    def router(self, guard: Guard) -> APIRouter:
        return router(self.app_url, guard)


def deployed_mapping(conn: psycopg.Connection[Any], contract: str) -> dict[str, str]:
    """Bundle revision → contract revision, from the hub log's ``contract.deployed`` entries."""
    rows = conn.execute(
        "SELECT entry FROM ledger_entries"
        " WHERE position(%s::bytea in entry) > 0 AND position(%s::bytea in entry) > 0",
        (b'"kind":"contract.deployed"', f'"contract":"{contract}"'.encode()),
    ).fetchall()
    entries = [Entry.from_bytes(bytes(raw), canonical=False) for (raw,) in rows]
    return history.bundle_revisions(entries, contract)


def in_force_with_rules(conn: psycopg.Connection[Any], station: str, at: datetime) -> list[history.InForce]:
    """What was in force at ``station`` at ``at``, each revision with the rule ids the hub sent in it.

    The revisions come from the station's own activations (:func:`index.in_force_at`); the rule ids
    from the drivers' ``contract.deployed`` entries for that station in the hub log, so the answer
    can be held against the station's, rule by rule.
    """
    found = index.in_force_at(conn, station, at)
    if not found:
        return found
    rows = conn.execute(
        "SELECT entry FROM ledger_entries"
        " WHERE position(%s::bytea in entry) > 0 AND position(%s::bytea in entry) > 0",
        (b'"kind":"contract.deployed"', f'"subject":"station/{station}"'.encode()),
    ).fetchall()
    entries = [Entry.from_bytes(bytes(raw), canonical=False) for (raw,) in rows]
    return history.with_rules(found, history.bundle_rules(entries))


def activations_of(conn: psycopg.Connection[Any], contract: str) -> list[history.Activation]:
    rows = conn.execute(
        "SELECT station, contract, revision, at FROM contract_activations"
        " WHERE contract = %s ORDER BY at, ledger_idx",
        (contract,),
    ).fetchall()
    return [history.Activation(str(s), str(c), r, at) for s, c, r, at in rows]


def router(url: str, guard: Guard) -> APIRouter:
    """ComplianceCentral's page ``/compliance`` and its API (search, CSV export, a job's blocks)."""
    routes = APIRouter()
    read_login = guard.requires(Permission.RECORDS_READ)

    def personal(login: Login) -> bool:
        return allows(login.role, Permission.PEOPLE_READ)

    def _search(params: dict[str, Any]) -> tuple[list[index.Refusal], list[dict[str, Any]]]:
        with psycopg.connect(url, autocommit=True) as conn:
            q = index.query(conn, **params)
            return index.search(conn, q), index.counts(conn, q)

    def _params(request: Request) -> dict[str, Any]:
        known = ("station", "rule", "standard", "person", "equipment", "job", "since", "until", "severity")
        found: dict[str, Any] = {k: v for k in known if (v := request.query_params.get(k))}
        if "limit" in request.query_params:
            try:
                found["limit"] = int(request.query_params["limit"])
            except ValueError as err:
                raise index.SearchError(f"limit: {request.query_params['limit']!r} is not a number") from err
        return found

    @routes.get("/compliance", response_class=HTMLResponse, include_in_schema=False)
    async def compliance_page(request: Request, login: Login = Depends(read_login)) -> HTMLResponse:
        """Every deny and warn from every station, narrowed by any of the query's fields."""
        error = None
        found: list[index.Refusal] = []
        counted: list[dict[str, Any]] = []
        try:
            params = _params(request)
            if "person" in params and not personal(login):
                raise index.SearchError("person: searching by badge needs a login that may read people")
            found, counted = await run_in_threadpool(_search, params)
        except index.SearchError as err:
            error, params = str(err), {}
        return TEMPLATES.TemplateResponse(
            request,
            "compliance/search.html",
            {
                "page": "ComplianceCentral",
                "login": login,
                "error": error,
                "narrow": dict(request.query_params),
                "refusals": [r.json(personal=personal(login)) for r in found],
                "counts": counted,
                "personal": personal(login),
            },
            status_code=400 if error else 200,
        )

    @routes.get("/api/v1/compliance/search")
    async def search_api(request: Request, login: Login = Depends(read_login)) -> dict[str, Any]:
        """The refusals matching the query (newest first) and their counts per day, rule and station."""
        try:
            params = _params(request)
            if "person" in params and not personal(login):
                raise index.SearchError("person: searching by badge needs a login that may read people")
            found, counted = await run_in_threadpool(_search, params)
        except index.SearchError as err:
            raise HTTPException(status_code=400, detail=str(err)) from err
        return {"refusals": [r.json(personal=personal(login)) for r in found], "counts": counted}

    @routes.get("/api/v1/compliance/export.csv", response_class=PlainTextResponse)
    async def export_api(request: Request, login: Login = Depends(read_login)) -> PlainTextResponse:
        """The refusals matching the query as CSV (the badge column only for logins that may read people)."""
        try:
            params = {**_params(request), "limit": 10_000}
            found, _ = await run_in_threadpool(_search, params)
        except index.SearchError as err:
            raise HTTPException(status_code=400, detail=str(err)) from err
        return PlainTextResponse(
            index.to_csv(found, personal=personal(login)),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="refusals.csv"'},
        )

    @routes.get("/api/v1/compliance/jobs/{job}/blocks")
    async def blocks_api(job: str, login: Login = Depends(read_login)) -> dict[str, Any]:
        """The denies that fired on one job, oldest first: evidence that the controls work."""

        def _blocks() -> list[index.Refusal]:
            with psycopg.connect(url, autocommit=True) as conn:
                return index.blocks_on_job(conn, job)

        found = await run_in_threadpool(_blocks)
        return {"job": job, "blocks": [r.json(personal=personal(login)) for r in found]}

    return routes


def policy_router(url: str, guard: Guard, approvals: Approvals, *, clock: Clock = wall_clock) -> APIRouter:
    """PolicyCentral's pages ``/policy``, ``/policy/contracts/{name}``, ``/policy/at`` and their API."""
    routes = APIRouter()
    read_login = guard.requires(Permission.RECORDS_READ)

    async def _history(name: str) -> list[dict[str, Any]]:
        record = await (await approvals()).get(name)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no contract {name} on this hub")

        def _read() -> tuple[list[history.Activation], dict[str, str]]:
            with psycopg.connect(url, autocommit=True) as conn:
                return activations_of(conn, name), deployed_mapping(conn, name)

        found, mapping = await run_in_threadpool(_read)
        rows = history.history(record, found=found, compiled_from=mapping, now=clock())
        return [row.json() for row in rows]

    @routes.get("/api/v1/policy/contracts/{name}/history")
    async def history_api(name: str, login: Login = Depends(read_login)) -> dict[str, Any]:
        """Every revision: author, approvers, when, the diff against the one before, periods per station."""
        return {"contract": name, "revisions": await _history(name)}

    @routes.get("/policy", response_class=HTMLResponse, include_in_schema=False)
    async def policy_page(request: Request, login: Login = Depends(read_login)) -> HTMLResponse:
        """Each contract's revision in force, the one pending approval, and its two-person state."""
        records = await (await approvals()).all()
        now = clock()
        shown = [
            {
                "contract": r.contract,
                "distributed": r.distributed,
                "pending": r.pending,
                "state": (e.state(now) if (e := r.find(r.distributed or "")) else "-"),
                "revisions": len(r.revisions),
            }
            for r in records
        ]
        return TEMPLATES.TemplateResponse(
            request, "compliance/policy.html", {"page": "PolicyCentral", "login": login, "contracts": shown}
        )

    @routes.get("/policy/contracts/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def history_page(request: Request, name: str, login: Login = Depends(read_login)) -> HTMLResponse:
        """One contract's history, newest revision first."""
        rows = await _history(name)
        return TEMPLATES.TemplateResponse(
            request,
            "compliance/history.html",
            {"page": f"Contract {name}", "login": login, "contract": name, "revisions": list(reversed(rows))},
        )

    def _at(station: str, text: str) -> list[dict[str, str]]:
        moment = history.parse_time(text)
        with psycopg.connect(url, autocommit=True) as conn:
            return [found.json() for found in in_force_with_rules(conn, station, moment)]

    @routes.get("/api/v1/policy/at")
    async def at_api(station: str, time: str, login: Login = Depends(read_login)) -> dict[str, Any]:
        """What was in force at ``station`` at ``time`` (RFC 3339), from the stations' own activations."""
        try:
            found = await run_in_threadpool(_at, station, time)
        except history.HistoryError as err:
            raise HTTPException(status_code=400, detail=str(err)) from err
        return {"station": station, "time": time, "inForce": found}

    @routes.get("/policy/at", response_class=HTMLResponse, include_in_schema=False)
    async def at_page(
        request: Request, station: str = "", time: str = "", login: Login = Depends(read_login)
    ) -> HTMLResponse:
        """ "What rules judged pt-1 at 10:00 on 30 Nov": the question as a form, the answer as a table."""
        error, found = None, None
        if station and time:
            try:
                found = await run_in_threadpool(_at, station, time)
            except history.HistoryError as err:
                error = str(err)
        return TEMPLATES.TemplateResponse(
            request,
            "compliance/at.html",
            {
                "page": "In force at",
                "login": login,
                "error": error,
                "station": station,
                "time": time,
                "found": found,
            },
            status_code=400 if error else 200,
        )

    return routes
