"""InventoryHub's Business side: the buyers' list of purchase requests, from what the Vault published.

InventoryHub runs on the Vault (it writes the lot records stations judge by; Business, facing the
internet, may write nothing that reaches a station: see the README's "The means"). What purchasing
needs of it comes to Business one way: each purchase request as ``published.purchase-request.PR-<id>``
(what to buy, from which supplier, how much in whole packs, for which station, when raised; no
person), kept by the Business feed in ``published.records``. This page and its API read only that
table, as the Business hub's own login, behind ``purchasing.read`` (the buyer, the quality manager,
the auditor, the admin). Nothing goes back: an order is placed with the supplier, not through here.

A published body is an edge (it came over NATS from another hub): each is read through
:class:`PublishedRequest`, and one that does not read is listed by its key and what is wrong
with it, never shown half-read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.inventory.store import PURCHASE_REQUEST_KIND
from smart.hub.published import feed
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard


class PublishedRequest(BaseModel):
    """A purchase request as InventoryHub publishes it (``PurchaseRequest.for_business``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    station: str = Field(min_length=1)
    material: str = Field(min_length=1)
    supplier: str = Field(min_length=1)
    quantity: float = Field(gt=0)
    unit: str = Field(min_length=1)
    raised_at: datetime
    #: The material's pack, when it has one: the quantity is that many whole packs.
    pack_size: float | None = Field(default=None, gt=0)
    packs: int | None = Field(default=None, gt=0)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A published record that is not a purchase request as this hub reads one: its key and why."""

    key: str
    why: str


@dataclass(frozen=True, slots=True)
class Requests:
    requests: tuple[PublishedRequest, ...]
    unreadable: tuple[Unreadable, ...]

    def json(self) -> dict[str, Any]:
        return {
            "requests": [r.model_dump(mode="json") for r in self.requests],
            "unreadable": [{"key": u.key, "why": u.why} for u in self.unreadable],
        }


def _why(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {str(e['msg']).lower()}" for e in err.errors()
    )


def purchase_requests(url: str, *, supplier: str = "") -> Requests:
    """What Business holds of InventoryHub's requests, newest raised first (``supplier``: that one's only)."""
    found: list[PublishedRequest] = []
    unreadable: list[Unreadable] = []
    for record in feed.records(url, PURCHASE_REQUEST_KIND):
        try:
            request = PublishedRequest.model_validate(record.body)
        except ValidationError as err:
            unreadable.append(Unreadable(record.key, _why(err)))
            continue
        if not supplier or request.supplier == supplier:
            found.append(request)
    found.sort(key=lambda r: (r.raised_at, r.id), reverse=True)
    return Requests(tuple(found), tuple(unreadable))


def router(url: str, guard: Guard) -> APIRouter:
    """``/purchasing`` and ``GET /api/v1/purchasing/requests`` (``purchasing.read``), on Business."""
    routes = APIRouter()
    reader = Depends(guard.requires(Permission.PURCHASING_READ))

    @routes.get("/api/v1/purchasing/requests", tags=["InventoryHub (purchasing)"])
    async def requests_api(supplier: str = "", login: Login = reader) -> dict[str, Any]:
        """The purchase requests InventoryHub published to this hub (``supplier=``: one supplier's)."""
        found = await run_in_threadpool(purchase_requests, url, supplier=supplier)
        return found.json()

    @routes.get("/purchasing", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, supplier: str = "", login: Login = reader) -> HTMLResponse:
        """The buyer's list: supplier, material, how much in whole packs, for which station, when raised."""
        found = await run_in_threadpool(purchase_requests, url, supplier=supplier)
        suppliers = sorted({r.supplier for r in found.requests}) if not supplier else [supplier]
        return TEMPLATES.TemplateResponse(
            request,
            "means/purchasing.html",
            {
                "page": "Purchasing",
                "login": login,
                "requests": found.requests,
                "unreadable": found.unreadable,
                "supplier": supplier,
                "suppliers": suppliers,
            },
        )

    return routes
