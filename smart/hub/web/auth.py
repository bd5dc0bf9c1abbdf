"""Hub login and permission checks: sessions in a cookie, roles from ``smart.access.roles``.

Every page and API route of the access pages depends on :meth:`Guard.requires`
with the permission it needs. No session: pages redirect to ``/login`` and
API routes answer 401. A session whose role lacks the permission: 403, and
the refusal is logged with who, what and where (never a password or token).
The session cookie is HttpOnly and SameSite=Strict, so another site cannot
make a signed-in browser post to these forms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, pass_environment
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match

from smart import style
from smart.access.roles import Permission, allows
from smart.hub.vault.logins import SESSION_LIFETIME, Login, Logins

log = structlog.get_logger("smart.hub.web.auth")

SESSION_COOKIE = "smart_session"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals["shop_zone"] = style.default_zone()


@pass_environment
def _shop_time(env: Environment, value: object, seconds: bool = False) -> str:
    """``{{ at | shop_time }}``: every time on a hub page, in the shop's zone, without microseconds."""
    return style.shop_time(value, env.globals["shop_zone"], seconds=seconds)  # type: ignore[arg-type]


TEMPLATES.env.filters["shop_time"] = _shop_time


@dataclass(frozen=True, slots=True)
class ContractFlag:
    """An emergency contract revision distributed on one approval, its countersignature due or overdue."""

    contract: str
    revision: str
    overdue: bool
    #: When the second person must have countersigned (the first approval + 24 h).
    deadline: datetime
    #: The badge of its one approver, on a hub whose pages may name a person; ``None`` on Business,
    #: whose copy of the flag was published without one.
    approved_by: str | None = None

    def line(self) -> str:
        """The banner's words."""
        word = "OVERDUE: " if self.overdue else ""
        alone = f"{self.approved_by}'s approval alone" if self.approved_by else "one person's approval alone"
        return (
            f"{word}emergency revision {self.revision[:12]} of {self.contract} was distributed on {alone}; "
            f"a second person must countersign by {self.deadline.isoformat(timespec='minutes')}"
        )


#: The flags every hub page's banner shows (``access/base.html``), by who keeps them: ``approvals`` (a
#: role reading the contract approvals: the Vault's PolicyCentral, the Floor's ComplianceCentral) and
#: ``published`` (Business, from the flags the Vault published to it). Registered here, where the
#: pages' environment is built, so every page renders the banner whether or not a keeper was imported.
_CONTRACT_FLAGS: dict[str, tuple[ContractFlag, ...]] = {}


def contract_flags() -> list[str]:
    """What every hub page's banner shows now: one line per flagged revision, however many keep it.

    In one process running several roles (``smart up``) the Vault's reading and Business's published
    copy flag the same revision: it is shown once, in the words of the reading that names the approver.
    """
    merged: dict[tuple[str, str], ContractFlag] = {}
    for flags in list(_CONTRACT_FLAGS.values()):
        for flag in flags:
            key = (flag.contract, flag.revision)
            held = merged.get(key)
            if held is None or (held.approved_by is None and flag.approved_by is not None):
                merged[key] = flag
    return [flag.line() for flag in merged.values()]


def show_contract_flags(flags: Sequence[ContractFlag], *, source: str = "approvals") -> None:
    """Replace what ``source`` flags on every hub page (none once its keeper stops)."""
    if flags:
        _CONTRACT_FLAGS[source] = tuple(flags)
    else:
        _CONTRACT_FLAGS.pop(source, None)


TEMPLATES.env.globals["contract_flags"] = contract_flags


#: The hub's navigation bar: each page's link, its label, and the route that shows this app serves it
#: (the dashboard's home ``/`` is also the bare status redirect of an app without the dashboard).
NAV: tuple[tuple[str, str, str], ...] = (
    ("/", "Dashboard", "/api/v1/dashboard"),
    ("/jobs", "Jobs", "/jobs"),
    ("/people", "People", "/people"),
    ("/credentials", "Credentials", "/credentials"),
    ("/reorders", "Reorders", "/reorders"),
    ("/clients", "Clients", "/clients"),
    ("/pos", "POs", "/pos"),
    ("/projects", "Projects", "/projects"),
    ("/pay", "Pay", "/pay"),
    ("/standards", "Standards", "/standards"),
    ("/ncrs", "NCRs", "/ncrs"),
    ("/inventory", "Inventory", "/inventory"),
    ("/purchasing", "Purchasing", "/purchasing"),
    ("/maintenance", "Maintenance", "/maintenance"),
    ("/compliance", "Compliance", "/compliance"),
    ("/policy", "Policy", "/policy"),
    ("/safety", "Safety", "/safety"),
    ("/audit", "Audit", "/audit"),
    ("/education", "Education", "/education"),
    ("/peopleops", "PeopleOps", "/peopleops"),
    ("/growth", "Growth", "/growth"),
    ("/feedback", "Feedback", "/feedback"),
    ("/advice", "Advice", "/advice"),
    ("/ask", "Ask", "/ask"),
    ("/admin/status", "Status", "/admin/status"),
)


def nav_links(request: object) -> list[tuple[str, str]]:
    """The nav bar of the app serving ``request``: links to the pages it serves, and no others.

    A hub role's app carries only its own services' pages (``HubServices.routers``, by
    ``HubServices.runs``): in split pods a link to another role's page would answer 404, so it is
    not shown. One app with every role's pages (``smart up``, ``--role all``) links to them all.
    Read from the app's routes, so the bar follows wherever ``ROLE_SERVICES`` puts a service.
    """
    if not isinstance(request, Request):  # a page rendered outside an app (no request): every link
        return [(href, label) for href, label, _ in NAV]
    routes = request.app.router.routes
    return [(href, label) for href, label, probe in NAV if _served(routes, probe)]


def _served(routes: Sequence[BaseRoute], path: str) -> bool:
    """Whether a GET of ``path`` reaches one of ``routes`` (asked as the app's router asks them)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


TEMPLATES.env.globals["nav_links"] = nav_links


def use_shop_zone(zone: ZoneInfo) -> None:
    """Show the hub's times in ``zone`` (the settings' ``shop_timezone``), from now on."""
    TEMPLATES.env.globals["shop_zone"] = zone


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (last value wins); forms here never upload files."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


class Guard:
    """Who is signed in, and may they do this?"""

    def __init__(self, logins: Logins) -> None:
        self.logins = logins

    async def current(self, request: Request) -> Login | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        return await run_in_threadpool(self.logins.session, token)

    def requires(self, permission: Permission) -> Callable[[Request], Awaitable[Login]]:
        async def check(request: Request) -> Login:
            login = await self.current(request)
            if login is None:
                log.warning("anonymous request refused", permission=permission.value, path=request.url.path)
                if request.url.path.startswith("/api/") or request.method != "GET":
                    raise HTTPException(status_code=401, detail="sign in first")
                raise HTTPException(
                    status_code=303, headers={"Location": f"/login?next={quote(request.url.path)}"}
                )
            if not allows(login.role, permission):
                log.warning(
                    "permission refused",
                    username=login.username,
                    role=login.role.value,
                    permission=permission.value,
                    method=request.method,
                    path=request.url.path,
                )
                raise HTTPException(
                    status_code=403, detail=f"role {login.role.value} may not {permission.value}"
                )
            return login

        return check


def router(logins: Logins) -> APIRouter:
    routes = APIRouter()

    @routes.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "access/login.html", {"page": "Sign in", "next": next})

    @routes.post("/login", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        fields = await form_fields(request)
        token = await run_in_threadpool(
            logins.sign_in, fields.get("username", ""), fields.get("password", "")
        )
        target = fields.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if token is None:
            return TEMPLATES.TemplateResponse(
                request,
                "access/login.html",
                {"page": "Sign in", "next": target, "error": "Unknown user or wrong password."},
                status_code=401,
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @routes.post("/logout", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await run_in_threadpool(logins.sign_out, token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return routes
