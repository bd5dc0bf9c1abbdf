"""Pay as the Floor hub runs it: its store, the index of signed C of Cs it judges by, its routes.

Pay stays on the Floor: it invoices only shipped lines whose C of C is
signed on the floor's ledger, which only the Floor reads. Its invoices and
credit notes reach the shop's client on the Business hub through the
one-way feed (:mod:`smart.hub.published.client_views`), never by a read
of ``pay`` from there.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import APIRouter

from smart.hub.audit import index as audit_index
from smart.hub.pay import store as pay_store
from smart.hub.pay import web as pay_web
from smart.hub.service_log import PAY, ServiceNodeLog
from smart.hub.web.auth import Guard
from smart.keys import KeyStore
from smart.ledger import hub_store


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    pay_store.migrate(owner_url, app_role=app_role)
    audit_index.migrate(owner_url, app_role=app_role)  # the C of Cs AuditCentral printed, published as stored


class PayServices:
    """Pay's store (its ``pay`` ledger node) and the signed C of C index it follows from the hub log."""

    def __init__(self, app_url: str, *, keys: KeyStore, ledger_dir: Path) -> None:
        self.pay = pay_store.Pay(app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=PAY))
        self.certificates = pay_store.CertificateIndex.connect(app_url)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.certificates.run(), name="pay-certificates")

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [pay_web.router(self.pay, guard), pay_web.page_router(self.pay, guard)]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.certificates.close()
        self.pay.close()
