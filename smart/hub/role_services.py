"""Each hub role's own services beyond the core ones: started by :class:`~smart.hub.services.HubServices`.

A role service is started with the role's connections (its NATS user, its
database login) and offers its pages; its tables were migrated beforehand, as
the owner, by :func:`migrate` (called from ``HubServices.prepare``); :func:`start` starts those of the
role being run, in order, and returns them so the hub can list their routes
and stop them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from fastapi import APIRouter

from smart.bus.hub_roles import HubRole
from smart.hub.database_roles import DATABASE_ROLES
from smart.hub.web.auth import Guard
from smart.keys import KeyStore
from smart.ledger import hub_store

log = structlog.get_logger("smart.hub.role_services")

if TYPE_CHECKING:
    from smart.hub.services import HubServices


class RoleService(Protocol):
    def routers(self, guard: Guard) -> list[APIRouter]: ...

    async def stop(self) -> None: ...


class Pages:
    """A role service that is only pages (a router built once the role's guard is known)."""

    def __init__(self, build: Any) -> None:
        self.build = build

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [self.build(guard)]

    async def stop(self) -> None:
        return None


class Background:
    """A role service that is one task and perhaps some pages (the feed, the publisher)."""

    def __init__(
        self, name: str, work: Coroutine[Any, Any, None], routers: list[APIRouter] | None = None
    ) -> None:
        self.task = asyncio.create_task(_logged(name, work), name=name)
        self._routers = routers or []

    def routers(self, guard: Guard) -> list[APIRouter]:
        return self._routers

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure was logged when it came
            await self.task


async def _logged(name: str, work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as err:
        log.error("hub.service_failed", service=name, error=f"{type(err).__name__}: {err}"[:500])
        raise


def migrate(hub: HubServices, owner_url: str) -> None:
    """As the owner: the schemas of the role services ``hub`` runs, each granted to its role's login."""
    from smart.hub.client_api import service as client_api_service
    from smart.hub.dashboard import index as dashboard_index
    from smart.hub.education import service as education
    from smart.hub.feedback import service as feedback
    from smart.hub.peopleops import onboarding
    from smart.hub.published import client_views, feed, floor_publisher

    single = hub.role == "all"  # the single hub works as the ledger's app role throughout
    vault = hub_store.APP_ROLE if single else DATABASE_ROLES[HubRole.VAULT]
    business = hub_store.APP_ROLE if single else DATABASE_ROLES[HubRole.BUSINESS]
    if hub.runs("business-publisher"):
        floor_publisher.migrate(owner_url)
        client_views.migrate(owner_url)
    if hub.runs("business-feed"):
        feed.migrate(owner_url, role=business)
    if hub.runs("client-api"):  # its credentials; what it answers is the feed's (above)
        client_api_service.migrate(owner_url, app_role=business)
    if hub.runs("education"):
        education.migrate(owner_url, role=vault)
    if hub.runs("peopleops"):
        onboarding.migrate(owner_url, role=vault)
    if hub.runs("feedback"):
        feedback.migrate(owner_url, role=business)
    if hub.runs("dashboard"):
        dashboard_index.migrate(owner_url)


async def start(hub: HubServices, *, owner_url: str, keys: KeyStore) -> list[RoleService]:
    """The role's services, started: the Business feed, the Floor's publisher, Education, … ."""
    from smart.hub.published import client_views, feed, floor_publisher

    assert hub.connection is not None
    started: list[RoleService] = []
    js = hub.connection.jetstream()
    if hub.runs("business-publisher"):
        publisher = await asyncio.to_thread(floor_publisher.BusinessPublisher.connect, hub.app_database_url())
        started.append(Background("business-publisher", publisher.follow(js)))
        if hub.pay is not None:  # the client API's views: POs with status, C of Cs, proofs, invoices
            views = client_views.ClientViews(
                hub.app_database_url(),
                pay=hub.pay.pay,
                log_key=keys.signing_key(hub_store.HUB_KEY).verifying,
                max_payload=hub.connection.max_payload,
            )
            started.append(Background("client-views", views.follow(js)))
    if hub.runs("business-feed"):
        business = feed.BusinessFeed(js, hub.database_url_in_use)
        started.append(Background("business-feed", business.run()))
        from smart.hub.inventory import purchasing  # InventoryHub's Business side: the buyers' list

        kept = hub.database_url_in_use
        started.append(Pages(lambda guard: purchasing.router(kept, guard)))
        from smart.hub.compliance import flags as published_flags  # the banner: Business reads no approvals

        started.append(Background("contract-flags-published", published_flags.PublishedFlags(kept).run()))
    if hub.runs("client-api"):
        from smart.hub.client_api import service as client_api_service

        api = await asyncio.to_thread(
            client_api_service.ClientApiServices,
            hub.database_url_in_use,
            keys=keys,
            ledger_dir=hub.settings.state_dir / "ledger",
        )
        started.append(api)
    if hub.runs("education") and hub.smartid is not None:
        from smart.hub.education import service as education
        from smart.hub.education import web as education_web

        school = education.Education(hub.database_url_in_use, hub.smartid)
        started.append(Pages(lambda guard: education_web.router(school, guard)))
    if hub.runs("peopleops") and hub.smartid is not None:
        from smart.hub.peopleops import onboarding
        from smart.hub.peopleops import web as peopleops_web

        people = onboarding.PeopleOps(hub.database_url_in_use, hub.smartid)
        started.append(Pages(lambda guard: peopleops_web.router(people, guard)))
    if hub.runs("feedback"):
        from smart.hub.feedback import service as feedback
        from smart.hub.feedback import web as feedback_web
        from smart.hub.service_log import ServiceNodeLog

        node = ServiceNodeLog(hub.settings.state_dir / "ledger", keys, node=feedback.NODE)
        desk = feedback.Feedback(hub.database_url_in_use, node)
        started.append(Pages(lambda guard: feedback_web.router(desk, guard)))
    if hub.runs("growth"):
        from smart.hub.growth import web as growth_web

        url = hub.database_url_in_use
        started.append(Pages(lambda guard: growth_web.router(url, guard)))
    if hub.runs("ai-central"):
        from smart.hub.advice import service as advice

        ai = advice.AdviceService(
            advice.central(
                hub.app_database_url(),
                ledger_dir=hub.settings.state_dir / "ledger",
                keys=keys,
                zone=hub.settings.shop_zone,
                vault_url=owner_url if hub.smartid is not None else None,
            )
        )
        ai.start()
        started.append(ai)
    if hub.runs("policy") and hub.smartid is not None:
        from smart.hub.compliance import approvers
        from smart.hub.compliance import policy as policy_central

        central = policy_central.PolicyCentral(
            hub.app_database_url(),
            hub.connection,
            hub.smartid,
            approve=hub.contract_approver or approvers.for_settings(hub.settings),
        )
        await central.start()
        started.append(central)
    if hub.runs("hubquery"):
        from smart.hub.hubquery import answers
        from smart.hub.hubquery import web as hubquery_web

        query = answers.HubQuery(
            hub.role,
            smartid=hub.smartid,
            business_url=hub.database_url_in_use if hub.runs("business-feed") else None,
            maintenance_url=hub.app_database_url() if hub.runs("maintenance") else None,
            today=lambda: datetime.now(hub.settings.shop_zone).date(),
        )
        started.append(Pages(lambda guard: hubquery_web.router(query, guard)))
    if hub.runs("dashboard"):
        from smart.hub.dashboard import web as dashboard_web

        # SMART-ID's tables are read on its own (the owner's) connection, where this hub holds them.
        board = await asyncio.to_thread(
            dashboard_web.Dashboard,
            hub.app_database_url(),
            vault_url=owner_url if hub.smartid is not None else None,
            zone=hub.settings.shop_zone,
        )
        board.start(hub.app_database_url())
        started.append(board)
    return started
