"""Eight ingesters racing over six stations' 100,000 entries still make one gapless log, each entry once."""

from __future__ import annotations

import random
import threading

import psycopg

from smart.keys import KeyStore
from smart.ledger import hub_store, synthetic, verify

from .conftest import HubDatabase, enrol

NODES = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")
PER_NODE = 16_667  # 100,002 entries in all
INGESTERS = 8


def test_eight_ingesters_make_one_gapless_log_with_every_entry_once(
    hub_db: HubDatabase, keys: KeyStore
) -> None:
    chains = {n: list(synthetic.fast_chain(n, keys.signing_key(n), PER_NODE, batch_size=500)) for n in NODES}
    hub_key = keys.signing_key(hub_store.HUB_KEY)
    with hub_store.HubLog.connect(hub_db.app_url, key=hub_key, admin=keys.signing_key("ledger-admin")) as hub:
        enrol(hub, keys, *NODES)

    # Every ingester offers each node's next batch as it last saw it; two may race for the same
    # batch (one integrates it, the other's is a replay), none may skip ahead.
    shipped = dict.fromkeys(NODES, 0)
    guard = threading.Lock()
    integrated: list[int] = []
    replays: list[int] = []
    failures: list[BaseException] = []

    def ingester(number: int) -> None:
        rng = random.Random(number)
        try:
            with hub_store.HubLog.connect(
                hub_db.app_url, key=hub_key, admin=keys.signing_key("ledger-admin")
            ) as hub:
                while True:
                    with guard:
                        open_nodes = [n for n in NODES if shipped[n] < len(chains[n])]
                        if not open_nodes:
                            return
                        node = rng.choice(open_nodes)
                        at = shipped[node]
                    done = hub.ingest(chains[node][at])
                    with guard:
                        shipped[node] = max(shipped[node], at + 1)
                        (integrated if done.count else replays).append(done.count)
        except BaseException as err:  # reported below, with the thread that raised it
            failures.append(err)

    threads = [threading.Thread(target=ingester, args=(n,)) for n in range(INGESTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    total = PER_NODE * len(NODES)
    assert sum(integrated) == total
    with psycopg.connect(hub_db.owner_url, autocommit=True) as conn:
        count, distinct, low, high = conn.execute(
            "SELECT count(*), count(DISTINCT idx), min(idx), max(idx) FROM ledger_entries"
        ).fetchone()  # type: ignore[misc]
        assert (count, distinct, low, high) == (total, total, 0, total - 1)
        per_node = conn.execute(
            "SELECT node, count(*), count(DISTINCT node_seq), min(node_seq), max(node_seq)"
            " FROM ledger_entries GROUP BY node ORDER BY node"
        ).fetchall()
        assert per_node == [(n, PER_NODE, PER_NODE, 0, PER_NODE - 1) for n in sorted(NODES)]
        report = verify.verify_hub(conn, log_key=hub_key.verifying, admin=keys.verifying_key("ledger-admin"))
    assert report.ok, report.first
    assert report.size == total
