"""Putting SMART-ID's public keys, revocation list and per-station badges into the buckets stations mirror.

Publishing is a full sync: after it, each bucket holds exactly what the Vault
says now (a lifted suspension disappears from the revocation list, a badge
that lost access to a station disappears from that station's bucket). Each
station's ``station-records`` people are synced the same way: the badges
allowed there, with the certifications, eye exams and performance their
contract rules judge (:mod:`.station_people`), and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import nats
from nats.js import JetStreamContext

from smart.access import distribution
from smart.hub.vault import station_people
from smart.hub.vault.smartid import SmartId


@dataclass(frozen=True, slots=True)
class Published:
    keys: int
    revocations: int
    badges: dict[str, int]


async def publish(smartid: SmartId, js: JetStreamContext, stations: Sequence[str]) -> Published:
    keys_kv = await distribution.bucket(js, distribution.KEYS_BUCKET)
    keys = smartid.issuer_keys()
    await distribution.publish_keys(keys_kv, keys)
    revocations_kv = await distribution.bucket(js, distribution.REVOCATIONS_BUCKET)
    revocations = smartid.revocations()
    listed = set(await distribution.read_revocations(revocations_kv))
    for revocation in revocations:
        await distribution.publish_revocation(revocations_kv, revocation)
    for lifted in listed - {r.credential_id for r in revocations}:
        await distribution.lift_revocation(revocations_kv, lifted)
    counts = {}
    employee_of = {person.badge_id: person.employee_id for person in smartid.people()}
    for station in stations:
        badges = smartid.station_badges(station)
        await distribution.publish_badges(
            await distribution.bucket(js, distribution.station_bucket(station)), badges
        )
        people = [(b.badge, smartid.records(employee_of[b.badge])) for b in badges if b.badge in employee_of]
        await station_people.publish_people(js, station, people)
        counts[station] = len(badges)
    return Published(keys=len(keys), revocations=len(revocations), badges=counts)


def publisher(smartid: SmartId, nats_url: str, stations: Sequence[str]) -> Callable[[], Awaitable[Published]]:
    """A call that publishes to the hub NATS at ``nats_url`` (one short connection each time)."""

    async def run() -> Published:
        client = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return await publish(smartid, client.jetstream(), stations)
        finally:
            await client.close()

    return run
