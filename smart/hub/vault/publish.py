"""Putting SMART-ID's public keys, revocation list and per-station badges into the buckets stations mirror.

Publishing is a full sync: after it, each bucket holds exactly what the Vault
says now (a lifted suspension disappears from the revocation list, a badge
that lost access to a station disappears from that station's bucket). Each
station's ``station-records`` people are synced the same way: the badges
allowed there, with the certifications, eye exams and performance their
contract rules judge (:mod:`.station_people`), and nothing else.

Because a full sync withdraws whoever the Vault no longer lets in,
:func:`preview` says first what a publish would change at each station (the
badges it would add, withdraw or give new credentials, the revocations it
would list or lift), reading the buckets as they are and changing nothing;
``smart credentials publish`` shows it and asks before withdrawing anyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    everyone = smartid.people()
    employee_of = {person.badge_id: person.employee_id for person in everyone}
    roles = {person.badge_id: person.roles for person in everyone}
    for station in stations:
        badges = smartid.station_badges(station)
        await distribution.publish_badges(
            await distribution.bucket(js, distribution.station_bucket(station)), badges
        )
        people = [(b.badge, smartid.records(employee_of[b.badge])) for b in badges if b.badge in employee_of]
        await station_people.publish_people(js, station, people, roles)
        counts[station] = len(badges)
    return Published(keys=len(keys), revocations=len(revocations), badges=counts)


@dataclass(frozen=True, slots=True)
class StationChange:
    """What a publish would change at one station: badges added, withdrawn, with new credentials."""

    station: str
    added: tuple[str, ...]
    withdrawn: tuple[str, ...]
    renewed: tuple[str, ...]
    kept: int

    @property
    def changes(self) -> bool:
        return bool(self.added or self.withdrawn or self.renewed)


@dataclass(frozen=True, slots=True)
class Preview:
    """What :func:`publish` would change, station by station, read from the buckets as they are."""

    keys_added: tuple[str, ...]
    keys_removed: tuple[str, ...]
    revoked: tuple[str, ...]
    lifted: tuple[str, ...]
    stations: tuple[StationChange, ...]

    @property
    def withdrawals(self) -> dict[str, tuple[str, ...]]:
        """Badges a publish would take away from a station, by station (only those that lose some)."""
        return {c.station: c.withdrawn for c in self.stations if c.withdrawn}

    def lines(self) -> list[str]:
        """The preview in words, one line per change, for the person about to publish."""
        said = []
        if self.keys_added or self.keys_removed:
            said.append(
                f"issuer keys: +{len(self.keys_added)} {', '.join(self.keys_added)}"
                f" -{len(self.keys_removed)} {', '.join(self.keys_removed)}".rstrip()
            )
        if self.revoked or self.lifted:
            said.append(f"revocations: {len(self.revoked)} to list, {len(self.lifted)} suspension(s) lifted")
        for change in self.stations:
            if not change.changes:
                said.append(f"{change.station}: no change ({change.kept} badge(s))")
                continue
            parts = []
            if change.added:
                parts.append(f"adds {', '.join(change.added)}")
            if change.renewed:
                parts.append(f"new credentials for {', '.join(change.renewed)}")
            if change.withdrawn:
                parts.append(f"WITHDRAWS {', '.join(change.withdrawn)}")
            said.append(f"{change.station}: {'; '.join(parts)} ({change.kept} unchanged)")
        return said


async def preview(smartid: SmartId, js: JetStreamContext, stations: Sequence[str]) -> Preview:
    """What :func:`publish` would change now; reads the buckets and changes nothing in them."""
    held_keys = set(await distribution.read_keys(await distribution.bucket(js, distribution.KEYS_BUCKET)))
    wanted_keys = {k.key_id for k in smartid.issuer_keys()}
    listed = await distribution.read_revocations(
        await distribution.bucket(js, distribution.REVOCATIONS_BUCKET)
    )
    wanted_revocations = {r.credential_id: r for r in smartid.revocations()}
    changes = []
    for station in stations:
        held = await distribution.read_badges(
            await distribution.bucket(js, distribution.station_bucket(station))
        )
        wanted = {b.badge: b for b in smartid.station_badges(station)}
        renewed = sorted(
            b for b in wanted.keys() & held.keys() if wanted[b].credentials != held[b].credentials
        )
        changes.append(
            StationChange(
                station=station,
                added=tuple(sorted(wanted.keys() - held.keys())),
                withdrawn=tuple(sorted(held.keys() - wanted.keys())),
                renewed=tuple(renewed),
                kept=len(wanted.keys() & held.keys()) - len(renewed),
            )
        )
    return Preview(
        keys_added=tuple(sorted(wanted_keys - held_keys)),
        keys_removed=tuple(sorted(held_keys - wanted_keys)),
        revoked=tuple(sorted(c for c, r in wanted_revocations.items() if listed.get(c) != r)),
        lifted=tuple(sorted(listed.keys() - wanted_revocations.keys())),
        stations=tuple(changes),
    )


def publisher(
    smartid: SmartId, nats_url: str, stations: Sequence[str], *, signin: Mapping[str, Any]
) -> Callable[[], Awaitable[Published]]:
    """A call that publishes to the hub NATS at ``nats_url`` (one short connection each time).

    ``signin`` is the ``nats.connect`` keywords of the publishing hub's user (the Vault's, or the
    driver's for ``--role all``): the hub NATS asks every connection to sign in.
    """

    async def run() -> Published:
        client = await nats.connect(
            nats_url,
            connect_timeout=2,
            allow_reconnect=False,  # refused (e.g. its sign-in) is an error now, never a retry loop
            max_reconnect_attempts=0,
            **signin,
        )
        try:
            return await publish(smartid, client.jetstream(), stations)
        finally:
            await client.close()

    return run
