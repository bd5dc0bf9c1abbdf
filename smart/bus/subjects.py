"""Names on the bus: buckets, keys and subjects the hub and the stations agree on.

Kept in one file so a station's NATS permissions (least privilege) and the
code that publishes can be read side by side.

- ``contracts`` (hub KV, mirrored by every station): key ``<station>.<contract>``,
  value = the hub-signed bundle envelope of that contract for that station;
  a delete retires the contract there.
- ``station.<station>.heartbeat``: the station's heartbeat (core NATS, every
  few seconds), kept by the hub in the ``station-status`` KV bucket.
- ``ledger.<station>.batch`` (hub stream ``LEDGER``): batches of the station's
  ledger, ``Nats-Msg-Id`` = ``<station>:<first>-<last>``.
- ``station.<station>.…``: the station's own subjects (modules, alerts, the
  hub's witnessing requests).
"""

from __future__ import annotations

#: The hub's JetStream domain, where stations' mirrors find the hub's buckets.
HUB_DOMAIN = "hub"

CONTRACTS_BUCKET = "contracts"
CONTRACTS_HISTORY = 5
STATION_STATUS_BUCKET = "station-status"
LEDGER_STREAM = "LEDGER"
LEDGER_SUBJECTS = "ledger.>"


#: Hub buckets shared by all stations whose keys start with the station's id: a station mirrors
#: (and may read) only its own keys. The records bucket is ``smart.node.records.RECORDS_BUCKET``.
STATION_KEYED_BUCKETS = (CONTRACTS_BUCKET, "station-records")


def mirror_deliver_prefix(station: str) -> str:
    """Where the hub delivers a station leaf's bucket mirrors: inside the station's own subjects."""
    return f"station.{station}.mirror"


def contract_key(station: str, contract: str) -> str:
    return f"{station}.{contract}"


def contract_key_filter(station: str) -> str:
    return f"{station}.>"


def contract_from_key(station: str, key: str) -> str | None:
    """The contract named by ``key`` if the key is this station's, else ``None``."""
    prefix = f"{station}."
    return key[len(prefix) :] if key.startswith(prefix) and len(key) > len(prefix) else None


def ledger_subject(station: str) -> str:
    return f"ledger.{station}.batch"


def station_subject(station: str, *parts: str) -> str:
    return ".".join(("station", station, *parts))


def alert(station: str) -> str:
    return station_subject(station, "alert")


def decide(station: str) -> str:
    """The station's decision service (request-reply on its own leaf)."""
    return station_subject(station, "decide")


def heartbeat(station: str) -> str:
    return station_subject(station, "heartbeat")


HEARTBEATS = "station.*.heartbeat"


def inbox_prefix(station: str) -> str:
    """Where the station's clients receive replies: its NATS permissions allow ``_INBOX_<id>.>`` only.

    Pass it as ``inbox_prefix`` when connecting to the station's leaf (the agent and every module).
    """
    return f"_INBOX_{station}"
