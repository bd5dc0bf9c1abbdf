"""The serving loop's admission: a queue of one credential's requests in one trip, each still one token.

Twelve requests of one key arrive together on the serving loop with a bucket of five: they go to
PostgreSQL as one pipelined batch, and exactly five are let through (the rest told how long to
wait), as twelve separate statements would. The bucket is the database's, so the synchronous path
(another process's) draws on the same tokens; a key revoked is refused on the very next request.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from smart.hub.client_api import service as client_api_service
from smart.hub.client_api.store import ClientCredentials, RateLimit
from smart.hub.published import feed
from smart.hub.service_log import CLIENT_API
from smart.ledger import hub_store
from tests.hub.shop import QM, Work


def test_a_queue_of_one_keys_requests_takes_one_token_each_and_a_revoked_key_is_refused_next(
    work: Work,
) -> None:
    client_api_service.migrate(work.db.owner_url)
    feed.migrate(work.db.owner_url, role=hub_store.APP_ROLE)
    # Business knows a client as the Floor published it (a key is made only for such a client)
    body = {"client": "AEROSPAR", "name": "AeroSpar Industries"}
    arrived = feed.Published(kind="client", key="AEROSPAR", published_at=datetime.now(UTC), body=body)
    feed.BusinessFeed(None, work.db.app_url).keep(arrived, 1)  # type: ignore[arg-type]  # keep() needs no NATS
    store = ClientCredentials(work.db.app_url, ledger=work.node(CLIENT_API))
    _, key = store.create_key("AEROSPAR", actor=QM)
    limit = RateLimit(rate=0.01, burst=5)

    async def serve() -> None:
        together = await asyncio.gather(*(store.admit_serving(key, limit) for _ in range(12)))
        assert all(a is not None and a.credential.client == "AEROSPAR" for a in together)
        assert sorted(a.wait_s == 0 for a in together if a is not None) == [False] * 7 + [True] * 5
        # one more, alone on its own statement: still refused, the bucket is empty
        alone = await store.admit_serving(key, limit)
        assert alone is not None and alone.wait_s > 0

        other = RateLimit(rate=0.01, burst=3)  # a fresh bucket shape for a second key
        _, second = await asyncio.to_thread(store.create_key, "AEROSPAR", actor=QM)
        # the synchronous path (any other process's) takes from the same bucket in PostgreSQL
        taken = await asyncio.to_thread(store.admit, second, other)
        assert taken is not None and taken.wait_s == 0
        served = await asyncio.gather(*(store.admit_serving(second, other) for _ in range(3)))
        assert sorted(a.wait_s == 0 for a in served if a is not None) == [False, True, True]

        assert await store.admit_serving("smk_nokey.nosecret", limit) is None
        assert await store.admit_serving("smk_malformed", limit) is None
        await asyncio.to_thread(store.revoke_key, second.removeprefix("smk_").split(".")[0], actor=QM)
        assert await store.admit_serving(second, RateLimit(rate=100, burst=100)) is None
        await store.close_serving()

    try:
        asyncio.run(serve())
    finally:
        store.close()
