"""Publishing the Business subset (Vault, Floor) and receiving it (Business), over the one-way feed.

The Vault and the Floor call :func:`publish` with one of the published kinds
(the shop's clients, PO status, C of C, proof bundle, invoice, …) and a body that is already fit
for the shop's client: no person's name, no badge, no key. The Business hub
runs :class:`BusinessFeed`: a durable consumer on ``BUSINESS_FEED`` (the
mirror of ``PUBLISHED``) that keeps the latest body per kind and key in its
own schema ``published``, as the Business database role, which may read and
write that schema and nothing of the Vault's or the Floor's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
import psycopg
import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smart.bus import hub_roles
from smart.hub import migrations

log = structlog.get_logger("smart.hub.published")

SCHEMA = "published"
MIGRATIONS = Path(__file__).parent / "migrations"
GRANTS = {"records": "SELECT, INSERT, UPDATE"}


def migrate(owner_url: str, *, role: str) -> list[int]:
    """The ``published`` schema, usable by ``role`` (the Business hub's database role) only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=role)


class Published(BaseModel):
    """One message on the feed (the edge: NATS)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    key: str = Field(min_length=1)
    published_at: datetime
    body: dict[str, Any]


async def publish(js: JetStreamContext, *, kind: str, key: str, body: dict[str, Any]) -> int:
    """Put one record of the subset on the feed; the stream's sequence number it got."""
    message = Published(kind=kind, key=key, published_at=datetime.now(UTC), body=body)
    ack = await js.publish(
        hub_roles.published_subject(kind, key),
        message.model_dump_json().encode(),
        stream=hub_roles.PUBLISHED_STREAM,
    )
    log.info("published.sent", kind=kind, key=key, seq=ack.seq)
    return int(ack.seq)


@dataclass(frozen=True, slots=True)
class PublishedRecord:
    kind: str
    key: str
    body: dict[str, Any]
    published_at: datetime


def records(url: str, kind: str) -> list[PublishedRecord]:
    """What Business holds of ``kind``, newest first."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT kind, key, body, published_at FROM published.records WHERE kind = %s"
            " ORDER BY published_at DESC",
            (kind,),
        ).fetchall()
    return [PublishedRecord(r["kind"], r["key"], dict(r["body"]), r["published_at"]) for r in rows]


class BusinessFeed:
    """The Business hub's end of the feed: pull, keep, acknowledge; a bad message is logged and dropped."""

    def __init__(self, js: JetStreamContext, url: str) -> None:
        self.js = js
        self.url = url

    def keep(self, message: Published, seq: int) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO published.records (kind, key, body, published_at, feed_seq)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind, key) DO UPDATE SET"
                " body = EXCLUDED.body, published_at = EXCLUDED.published_at, feed_seq = EXCLUDED.feed_seq"
                " WHERE published.records.feed_seq < EXCLUDED.feed_seq",
                (message.kind, message.key, Jsonb(message.body), message.published_at, seq),
            )

    async def run(self) -> None:
        """Follow the feed until cancelled; NATS slow or away (a busy machine, a restart) is waited out."""
        while True:
            try:
                subscription = await self.js.pull_subscribe(
                    hub_roles.PUBLISHED_SUBJECTS,
                    durable=hub_roles.BUSINESS_FEED_CONSUMER,
                    stream=hub_roles.BUSINESS_FEED_STREAM,
                    config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
                )
                break
            except (TimeoutError, nats.errors.Error) as err:
                log.warning("published.feed_waiting", error=type(err).__name__)
                await asyncio.sleep(1)
        while True:
            try:
                batch = await subscription.fetch(50, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError, nats.js.errors.FetchTimeoutError):
                continue
            except nats.errors.Error as err:
                log.warning("published.feed_fetch_failed", error=type(err).__name__)
                await asyncio.sleep(1)
                continue
            for msg in batch:
                try:
                    message = Published.model_validate(json.loads(msg.data))
                    if message.kind not in hub_roles.PUBLISHED_KINDS:
                        raise ValueError(f"kind {message.kind!r} is not published to Business")
                except (ValueError, ValidationError) as err:
                    log.error("published.refused", subject=msg.subject, error=str(err)[:300])
                    await msg.ack()
                    continue
                await asyncio.to_thread(self.keep, message, msg.metadata.sequence.stream)
                await msg.ack()
