"""A hub page with a form, and the API beside it: what was done is said, a refusal says why.

Education's and Feedback's pages answer alike: the page is shown with what it holds, a form
posted to it shows the page again saying what was done, or, when the service refuses (a field
named wrong, a course unknown), the same page with the refusal and a 422, nothing recorded.
Their API routes turn the same refusals into a 422 naming what is wrong. Both ways are here
once, so every such page and route says it the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES

T = TypeVar("T")


async def or_422(call: Callable[[], T], refusal: type[Exception]) -> T:
    """``call`` (a service's blocking work) in the thread pool; its ``refusal`` answers 422 with its words."""
    try:
        return await run_in_threadpool(call)
    except refusal as err:
        raise HTTPException(status_code=422, detail=str(err)) from err


@dataclass(frozen=True, slots=True)
class FormPage:
    """One page: its template, its title, and what it shows besides its form's outcome (read afresh)."""

    template: str
    title: str
    holds: Callable[[], Awaitable[dict[str, Any]]]

    async def show(self, request: Request, login: Login, *, done: str = "") -> HTMLResponse:
        """The page as it stands, saying ``done`` (what the form just did) if anything."""
        return await self._render(request, login, done=done, error="", status=200)

    async def refuse(self, request: Request, login: Login, error: str) -> HTMLResponse:
        """The page again with the refusal (422): the form's input changed nothing."""
        return await self._render(request, login, done="", error=error, status=422)

    async def _render(
        self, request: Request, login: Login, *, done: str, error: str, status: int
    ) -> HTMLResponse:
        context = {"page": self.title, "login": login, **await self.holds(), "done": done, "error": error}
        return TEMPLATES.TemplateResponse(request, self.template, context, status_code=status)
