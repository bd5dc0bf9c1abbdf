"""The emergency countersign flag, published one way to the Business hub, and its banner there.

An emergency contract revision distributed on one Level 3's approval must be countersigned within
24 h or it is flagged on every hub page. The Vault and the Floor read the ``contract-approvals``
bucket and flag their own pages (:class:`smart.hub.compliance.service.ContractFlags`); Business
reads no approvals (it is receive-only: issue 22), so the Vault's PolicyCentral publishes each
contract's flag as ``published.contract-flag.<contract>`` (:class:`FlagPublisher`): the contract,
the revision, ``due``, ``overdue`` or ``clear``, and the deadline; no person (the approver's badge
stays on the Vault's and the Floor's pages). Business's feed keeps the latest per contract in
``published.records``, and :class:`PublishedFlags` shows those on every Business page, judging a
``due`` one past its deadline as overdue by its own clock (the Vault may be out of reach then).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import structlog
from nats.js import JetStreamContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smart.contracts import approval
from smart.hub.published import feed
from smart.hub.web.auth import ContractFlag, show_contract_flags

log = structlog.get_logger("smart.hub.compliance.flags")

#: The published kind (``hub_roles.PUBLISHED_KINDS``) and the banner's source on Business.
KIND = "contract-flag"
SOURCE = "published"


class PublishedFlag(BaseModel):
    """One contract's countersign flag as published to Business (the edge: NATS, then its table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract: str = Field(min_length=1)
    revision: str
    state: Literal["due", "overdue", "clear"]
    deadline: datetime | None = None

    def flag(self, now: datetime) -> ContractFlag | None:
        """The banner's flag at ``now`` (``None`` when clear)."""
        if self.state == "clear" or self.deadline is None:
            return None
        return ContractFlag(
            contract=self.contract,
            revision=self.revision,
            overdue=self.state == "overdue" or now >= self.deadline,
            deadline=self.deadline,
        )


def published(records: list[approval.Record], flagged: list[ContractFlag]) -> dict[str, PublishedFlag]:
    """Each contract's flag for Business: its due or overdue revision, else clear."""
    found = {
        r.contract: PublishedFlag(contract=r.contract, revision=r.distributed or "", state="clear")
        for r in records
    }
    for flag in flagged:
        found[flag.contract] = PublishedFlag(
            contract=flag.contract,
            revision=flag.revision,
            state="overdue" if flag.overdue else "due",
            deadline=flag.deadline,
        )
    return found


class FlagPublisher:
    """The Vault's side: publishes a contract's flag when it changes (and each once after a start).

    A publish that fails (NATS away) is not noted as sent, so the next reading sends it again;
    Business keeps one record per contract, the latest.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.sent: dict[str, PublishedFlag] = {}

    async def __call__(self, records: list[approval.Record], flagged: list[ContractFlag]) -> None:
        for contract, flag in published(records, flagged).items():
            if self.sent.get(contract) == flag:
                continue
            body = flag.model_dump(mode="json")
            seq = await feed.publish(self.js, kind=KIND, key=contract, body=body)
            self.sent[contract] = flag
            log.info(
                "contract_flag.published",
                contract=contract,
                revision=flag.revision,
                state=flag.state,
                seq=seq,
            )


def wall_clock() -> datetime:
    return datetime.now(UTC)


def digest(record: feed.PublishedRecord) -> str:
    """Which record Business holds under a key: its body and when it was published, as SHA-256.

    A record replaced by another (even one carrying the same body again) is another digest.
    """
    kept = {"body": record.body, "published_at": record.published_at.isoformat()}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


class PublishedFlags:
    """Business's side: every few seconds, the banner of its pages from the flags it was published.

    A record it cannot read is refused on every pass (never half-shown) but said once: the log names
    the key, the revision it claims and its digest the first time it is seen, and again only when a
    different record (another digest) takes that key, not every 5 s until the Vault replaces it.
    """

    def __init__(self, url: str, clock: Callable[[], datetime] = wall_clock) -> None:
        self.url = url
        self.clock = clock
        #: The unreadable record each key holds now (its digest), as last said.
        self.unreadable: dict[str, str] = {}

    def refresh(self) -> list[ContractFlag]:
        now = self.clock()
        shown = []
        unreadable: dict[str, str] = {}
        for record in feed.records(self.url, KIND):
            try:
                flag = PublishedFlag.model_validate(record.body).flag(now)
            except ValidationError as err:  # not a flag as this hub reads one: refused, never half-shown
                unreadable[record.key] = found = digest(record)
                if self.unreadable.get(record.key) != found:
                    claimed = record.body.get("revision")
                    log.error(
                        "contract_flag.unreadable",
                        key=record.key,
                        revision=claimed if isinstance(claimed, str) else None,
                        digest=found[:16],
                        published_at=record.published_at.isoformat(),
                        error=str(err)[:300],
                    )
                continue
            if flag is not None:
                shown.append(flag)
        self.unreadable = unreadable  # a key read again (or gone) is said anew if it turns unreadable
        show_contract_flags(shown, source=SOURCE)
        return shown

    async def run(self, every_s: float = 5.0) -> None:
        try:
            while True:
                try:
                    await asyncio.to_thread(self.refresh)
                except Exception as err:  # the database away a moment: the banner keeps what it showed
                    log.warning("contract_flag.not_read", error=f"{type(err).__name__}: {err}"[:200])
                await asyncio.sleep(every_s)
        finally:  # the banner is the process's: a stopped hub's flags must not stay on the next one's pages
            show_contract_flags([], source=SOURCE)
