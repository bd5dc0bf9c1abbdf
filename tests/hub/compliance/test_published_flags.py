"""Business refuses an unreadable countersign flag on every pass and says so once per record.

Business's banner reads the flags the Vault published to it (``published.contract-flag.<contract>``,
kept in ``published.records``) every 5 s. A record it cannot read used to be logged
(``contract_flag.unreadable``) on every pass until the Vault replaced it. Here the records come
over the real feed (the hub NATS's ``PUBLISHED`` stream, its ``BUSINESS_FEED`` mirror, Business's
consumer keeping them in a database of their own), and the banner reads them pass after pass: the
unreadable one stays refused and is said once; another unreadable record on the same key is said
again, once; a readable one in its place is shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from smart.bus.hub_roles import HubRole
from smart.hub import streams
from smart.hub.compliance import flags
from smart.hub.database_roles import DATABASE_ROLES
from smart.hub.published import feed
from smart.hub.web.auth import show_contract_flags
from smart.testing import logs
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FloorFactory, FreshDatabase

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PASSES = 4


def _unreadable(events: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in events if e["event"] == "contract_flag.unreadable"]


async def _until(what: Callable[[], Awaitable[bool]], describe: str) -> None:
    deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
    while asyncio.get_running_loop().time() < deadline:
        if await what():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {describe}")


async def test_an_unreadable_flag_is_refused_every_pass_and_logged_once_per_record(
    floor_factory: FloorFactory, database: FreshDatabase
) -> None:
    floor = floor_factory(stations=1)
    feed.migrate(database.url, role=DATABASE_ROLES[HubRole.BUSINESS])  # as Business migrates it
    connection = await nats.connect(floor.hub_url, **floor.settings.hub_nats_signin())
    js = connection.jetstream()
    await streams.ensure_business_feed(js)
    business = asyncio.create_task(feed.BusinessFeed(js, database.url).run())
    banner = flags.PublishedFlags(database.url, clock=lambda: NOW)

    async def kept(key: str, body: dict[str, Any]) -> bool:
        found = await asyncio.to_thread(feed.records, database.url, flags.KIND)
        return any(r.key == key and r.body == body for r in found)

    async def put(key: str, body: dict[str, Any]) -> None:
        await feed.publish(js, kind=flags.KIND, key=key, body=body)
        await _until(lambda: kept(key, body), f"Business keeps {key}'s {body}")

    def passes() -> tuple[list[list[str]], list[MutableMapping[str, Any]]]:
        with logs.captured() as events:
            shown = [[f.contract for f in banner.refresh()] for _ in range(PASSES)]
        return shown, _unreadable(events)

    deadline = (NOW + timedelta(hours=20)).isoformat()
    try:
        # The Vault's flag as a newer Vault might word it: a state this Business does not know.
        first = {"contract": "penetrant", "revision": "a" * 64, "state": "paused", "deadline": deadline}
        await put("penetrant", first)
        await put(
            "heat-treat",
            {"contract": "heat-treat", "revision": "b" * 64, "state": "due", "deadline": deadline},
        )
        shown, said = passes()
        assert shown == [["heat-treat"]] * PASSES  # refused on every pass, the readable one shown
        (once,) = said
        assert once["key"] == "penetrant" and once["revision"] == "a" * 64
        assert "state" in once["error"] and len(once["digest"]) == 16

        # Another unreadable record takes the key: said again, once, and refused still.
        second = {"contract": "penetrant", "revision": "c" * 64, "state": "due", "deadline": "tomorrow"}
        await put("penetrant", second)
        shown, said = passes()
        assert shown == [["heat-treat"]] * PASSES
        (again,) = said
        assert again["revision"] == "c" * 64 and again["digest"] != once["digest"]

        # A readable flag replaces it: shown, nothing said; the first record coming back is said anew.
        readable = {"contract": "penetrant", "revision": "c" * 64, "state": "due", "deadline": deadline}
        await put("penetrant", readable)
        shown, said = passes()
        assert [sorted(s) for s in shown] == [["heat-treat", "penetrant"]] * PASSES and said == []
        await put("penetrant", first)
        shown, said = passes()
        assert shown == [["heat-treat"]] * PASSES
        assert [e["revision"] for e in said] == ["a" * 64]
    finally:
        business.cancel()
        await asyncio.gather(business, return_exceptions=True)
        await connection.close()
        show_contract_flags([], source=flags.SOURCE)  # this process's banner: no later test's pages
