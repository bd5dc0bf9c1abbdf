"""PolicyCentral on the Vault hub: contract history, "in force at", the approval page and the flags.

DESIGN puts PolicyCentral (contract versions, diffs, approvals) on the Vault, and the issue keeps
personal data to the Vault's pages: the history names each revision's author and approvers by
badge, and the approval page has SMART-ID, which is the Vault's, sign for the signed-in person.
So ``/policy``, ``/policy/contracts/{name}``, ``/policy/at`` (and their ``/api/v1``) and
``/policy/contracts/{name}/approve`` are served together here, linked to one another, by the
role that holds SMART-ID. The two-person records come from the ``contract-approvals`` bucket
(read, never written: only the drivers write it); the stations' activations and the drivers'
``contract.deployed`` entries from the ledger tables, read as the ledger's app role, as the
Vault's StandardsCentral reads them. ComplianceCentral's refusal search stays on the Floor
beside the ledger intake that feeds its index.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from fastapi import APIRouter
from nats.aio.client import Client as NatsClient

from smart.contracts import approval
from smart.hub.compliance import approve_page
from smart.hub.compliance import flags as published_flags
from smart.hub.compliance.service import Clock, ContractFlags, policy_router, wall_clock
from smart.hub.vault.smartid import SmartId
from smart.hub.web.auth import Guard

log = structlog.get_logger("smart.hub.compliance.policy")


class PolicyCentral:
    """The Vault's contract pages and flags, started beside SMART-ID."""

    def __init__(
        self,
        ledger_url: str,
        connection: NatsClient,
        smartid: SmartId,
        *,
        approve: approve_page.Approver | None,
        clock: Clock = wall_clock,
    ) -> None:
        self.ledger_url = ledger_url
        self.connection = connection
        self.smartid = smartid
        self.approve = approve
        self.clock = clock
        # Business reads no approvals: the Vault publishes each contract's flag to it, one way.
        self.flags = ContractFlags(
            self.approvals, clock, send=published_flags.FlagPublisher(connection.jetstream())
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def approvals(self) -> approval.KvApprovalStore:
        return approval.KvApprovalStore(await approval.bucket(self.connection.jetstream()))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.flags.run(), name="contract-flags-vault")]
        log.info("policy_central.started", approver="wired" if self.approve else "none")

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [
            policy_router(self.ledger_url, guard, self.approvals, clock=self.clock),
            approve_page.router(
                guard, smartid=self.smartid, approvals=self.approvals, approve=self.approve, clock=self.clock
            ),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ContractFlags.clear()
