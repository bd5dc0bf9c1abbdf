"""SMART-ID on the Vault hub: people, devices, personnel records and the credentials issued to them.

Every change that grants or takes away authority — issuing, renewing,
suspending, reinstating, revoking a credential — happens in one database
transaction together with an entry on SMART-ID's own ledger node
(``smart-id``) naming the actor, so "who let this inspector sign on that
day?" is answered from the ledger. A certified, training or safety
credential is issued only when the person's records make it current under
the scheme's rules, and it never outlives what backs it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Protocol

import psycopg
import structlog
from psycopg.rows import DictRow

from smart.access import distribution, issuing, tokens
from smart.access.credential import Credential, Kind, Reason, Revocation
from smart.access.derive import Standing, standings
from smart.access.records import Record, RecordKind
from smart.hub.vault import database
from smart.keys import SigningKey, VerifyingKey

log = structlog.get_logger("smart.vault.smartid")

NODE = "smart-id"
DERIVED_KINDS = (Kind.CERTIFIED, Kind.TRAINING, Kind.SAFETY)


class Ledger(Protocol):
    """What SMART-ID needs of its ledger node (``smart.ledger.NodeLog``)."""

    def append(
        self, *, kind: str, subject: str, data: Mapping[str, Any], actor: str, contract: str | None = None
    ) -> Any: ...


class VaultError(ValueError):
    """A SMART-ID operation that cannot be done; the message names the person or credential and why."""


@dataclass(frozen=True, slots=True)
class Person:
    employee_id: str
    name: str
    badge_id: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A credential as the hub keeps it: the token, whose it is, and its status."""

    credential: Credential
    token: str
    employee_id: str
    status: str
    status_reason: str | None
    issued_by: str

    @property
    def credential_id(self) -> str:
        return self.credential.credential_id


def utc_now() -> datetime:
    return datetime.now(UTC)


def _record_body(record: Record) -> dict[str, Any]:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    body = {
        k: v for k, v in values.items() if v is not None and k not in ("kind", "on", "record_id", "detail")
    }
    body["detail"] = dict(record.detail)
    return body


def _record(row: DictRow) -> Record:
    body = dict(row["body"])
    return Record(
        kind=RecordKind(row["kind"]),
        on=row["on_date"],
        record_id=str(row["record_id"]),
        **{k: v for k, v in body.items() if k != "detail"},
        detail=body.get("detail", {}),
    )


def _issued(row: DictRow) -> IssuedCredential:
    credential = Credential(
        credential_id=str(row["credential_id"]),
        subject=row["badge_id"],
        kind=Kind(row["kind"]),
        scope=row["scope"],
        issued_at=row["issued_at"],
        not_before=row["not_before"],
        expires_at=row["expires_at"],
        issuer_key_id=row["key_id"],
    )
    return IssuedCredential(
        credential=credential,
        token=row["token"],
        employee_id=row["employee_id"],
        status=row["status"],
        status_reason=row["status_reason"],
        issued_by=row["issued_by"],
    )


class SmartId:
    """The SMART-ID service over the Vault database, signing with ``key`` and recording to ``ledger``."""

    def __init__(
        self,
        database_url: str,
        *,
        key: SigningKey,
        ledger: Ledger,
        clock: Callable[[], datetime] = utc_now,
        zone: tzinfo = UTC,
        migrate: bool = True,
    ) -> None:
        """``migrate=False``: the schema was migrated by the owner beforehand (a hub role's own login)."""
        self.url = database_url
        #: The shop's time zone: records are current through the end of their due day here.
        self.zone = zone
        self.key = key
        self.ledger = ledger
        self.clock = clock
        if migrate:
            database.migrate(database_url)
        with database.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO vault.issuer_keys (key_id, public_key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (key.key_id, json.dumps(key.verifying.to_json())),
            )

    # -- people and devices -----------------------------------------------------------------

    def add_person(
        self, *, employee_id: str, name: str, badge_id: str, roles: Sequence[str] = (), actor: str
    ) -> Person:
        if not distribution.valid_badge(badge_id):
            raise VaultError(f"badge id {badge_id!r}: use letters, digits, '-' or '_' (at most 64)")
        person = Person(employee_id, name, badge_id, tuple(roles))
        with database.connect(self.url) as conn:
            try:
                conn.execute(
                    "INSERT INTO vault.people (employee_id, name, badge_id, roles, added_by)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (employee_id, name, badge_id, list(roles), actor),
                )
            except psycopg.errors.UniqueViolation as err:
                raise VaultError(f"person {employee_id} or badge {badge_id} is already registered") from err
            self.ledger.append(
                kind="person.added",
                subject=f"person:{employee_id}",
                data={"employee_id": employee_id, "badge_id": badge_id, "roles": list(roles)},
                actor=actor,
            )
        log.info("person added", employee_id=employee_id, actor=actor)
        return person

    def people(self) -> list[Person]:
        with database.connect(self.url) as conn:
            rows = conn.execute("SELECT * FROM vault.people ORDER BY employee_id").fetchall()
        return [Person(r["employee_id"], r["name"], r["badge_id"], tuple(r["roles"])) for r in rows]

    def person(self, employee_id: str) -> Person:
        with database.connect(self.url) as conn:
            row = conn.execute("SELECT * FROM vault.people WHERE employee_id = %s", (employee_id,)).fetchone()
        if row is None:
            raise VaultError(f"no person with employee id {employee_id!r}")
        return Person(row["employee_id"], row["name"], row["badge_id"], tuple(row["roles"]))

    def add_device(self, *, device_id: str, kind: str, key: VerifyingKey, actor: str) -> None:
        with database.connect(self.url) as conn:
            conn.execute(
                "INSERT INTO vault.devices (device_id, kind, key_id, public_key, added_by)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (device_id)"
                " DO UPDATE SET key_id = EXCLUDED.key_id, public_key = EXCLUDED.public_key",
                (device_id, kind, key.key_id, json.dumps(key.to_json()), actor),
            )
            self.ledger.append(
                kind="device.registered",
                subject=f"device:{device_id}",
                data={"device_id": device_id, "kind": kind, "key_id": key.key_id},
                actor=actor,
            )

    def devices(self) -> dict[str, VerifyingKey]:
        with database.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT device_id, public_key FROM vault.devices ORDER BY device_id"
            ).fetchall()
        return {r["device_id"]: VerifyingKey.from_json(r["public_key"]) for r in rows}

    # -- records and what they make current -------------------------------------------------

    def add_record(self, employee_id: str, record: Record, *, actor: str) -> None:
        """Keep a personnel record; it goes on the ledger too, so an audit sees what was on file when."""
        self.person(employee_id)
        body = _record_body(record)
        with database.connect(self.url) as conn:
            conn.execute(
                "INSERT INTO vault.records (employee_id, kind, on_date, body, recorded_by)"
                " VALUES (%s, %s, %s, %s, %s)",
                (employee_id, record.kind.value, record.on, json.dumps(body), actor),
            )
            self.ledger.append(
                kind="personnel.recorded",
                subject=f"person:{employee_id}",
                data={"record": record.kind.value, "on": record.on.isoformat(), **body},
                actor=actor,
            )

    def records(self, employee_id: str) -> list[Record]:
        with database.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT * FROM vault.records WHERE employee_id = %s ORDER BY on_date, record_id",
                (employee_id,),
            ).fetchall()
        return [_record(r) for r in rows]

    def standings(self, employee_id: str, *, today: date | None = None) -> tuple[Standing, ...]:
        return standings(self.records(employee_id), today=today or self._today(self.clock()))

    def _today(self, now: datetime) -> date:
        """The shop's calendar day at ``now`` (a UTC date would turn the day over hours early or late)."""
        return now.astimezone(self.zone).date()

    # -- credentials ------------------------------------------------------------------------

    def issue(
        self,
        employee_id: str,
        *,
        kind: Kind,
        scope: Mapping[str, str],
        actor: str,
        valid_for: timedelta = timedelta(days=365),
        renews: str | None = None,
    ) -> IssuedCredential:
        """Sign and record a credential; certified/training/safety only when the records make it current."""
        person = self.person(employee_id)
        now = self.clock()
        if kind in DERIVED_KINDS:
            standing = self._standing_for(employee_id, kind, scope, now)
            try:
                credential = issuing.from_standing(
                    standing,
                    subject=person.badge_id,
                    now=now,
                    lifetime=valid_for,
                    issuer_key_id=self.key.key_id,
                    zone=self.zone,
                )
            except issuing.NotCurrentError as err:
                raise VaultError(f"cannot issue to {employee_id}: {err}") from err
        else:
            credential = issuing.new_credential(
                subject=person.badge_id,
                kind=kind,
                scope=scope,
                now=now,
                expires_at=now + valid_for,
                issuer_key_id=self.key.key_id,
            )
        token = tokens.sign(credential, self.key)
        with database.connect(self.url) as conn:
            conn.execute(
                "INSERT INTO vault.credentials (credential_id, employee_id, badge_id, kind, scope, issued_at,"
                " not_before, expires_at, key_id, token, issued_by, renews)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    credential.credential_id,
                    employee_id,
                    person.badge_id,
                    kind.value,
                    json.dumps(dict(credential.scope)),
                    credential.issued_at,
                    credential.not_before,
                    credential.expires_at,
                    credential.issuer_key_id,
                    token,
                    actor,
                    renews,
                ),
            )
            self.ledger.append(
                kind="credential.renewed" if renews else "credential.issued",
                subject=f"person:{employee_id}",
                data={
                    "credential_id": credential.credential_id,
                    "badge_id": person.badge_id,
                    "kind": kind.value,
                    "scope": dict(credential.scope),
                    "not_before": credential.not_before.isoformat(),
                    "expires_at": credential.expires_at.isoformat(),
                    "key_id": credential.issuer_key_id,
                    **({"renews": renews} if renews else {}),
                },
                actor=actor,
            )
        log.info("credential issued", credential_id=credential.credential_id, kind=kind.value, actor=actor)
        return IssuedCredential(credential, token, employee_id, "active", None, actor)

    def _standing_for(
        self, employee_id: str, kind: Kind, scope: Mapping[str, str], now: datetime
    ) -> Standing:
        found = [
            s
            for s in self.standings(employee_id, today=self._today(now))
            if s.kind is kind and all(s.scope.get(k) == v for k, v in scope.items())
        ]
        if not found:
            wanted = ", ".join(f"{k}: {v}" for k, v in scope.items())
            raise VaultError(
                f"cannot issue to {employee_id}: no record supports a {kind.value} credential ({wanted})"
            )
        return next((s for s in found if s.current), found[0])

    def issue_current(
        self, employee_id: str, *, actor: str, valid_for: timedelta = timedelta(days=365)
    ) -> list[IssuedCredential]:
        """Issue every certified/training/safety credential the records make current and none covers yet."""
        now = self.clock()
        held = [
            c for c in self.credentials(employee_id) if c.status == "active" and c.credential.expires_at > now
        ]
        issued = []
        for standing in self.standings(employee_id, today=self._today(now)):
            if not standing.current:
                continue
            if any(h.credential.kind is standing.kind and h.credential.scope == standing.scope for h in held):
                continue
            issued.append(
                self.issue(
                    employee_id, kind=standing.kind, scope=standing.scope, actor=actor, valid_for=valid_for
                )
            )
        return issued

    def credential(self, credential_id: str) -> IssuedCredential:
        try:
            uuid.UUID(credential_id)
        except ValueError as err:
            raise VaultError(f"{credential_id!r} is not a credential id") from err
        with database.connect(self.url) as conn:
            row = conn.execute(
                "SELECT * FROM vault.credentials WHERE credential_id = %s", (credential_id,)
            ).fetchone()
        if row is None:
            raise VaultError(f"no credential {credential_id}")
        return _issued(row)

    def credentials(self, employee_id: str | None = None) -> list[IssuedCredential]:
        with database.connect(self.url) as conn:
            if employee_id is None:
                rows = conn.execute(
                    "SELECT * FROM vault.credentials ORDER BY issued_at, credential_id"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM vault.credentials WHERE employee_id = %s"
                    " ORDER BY issued_at, credential_id",
                    (employee_id,),
                ).fetchall()
        return [_issued(r) for r in rows]

    def renew(
        self, credential_id: str, *, actor: str, valid_for: timedelta = timedelta(days=365)
    ) -> IssuedCredential:
        """A fresh credential of the same kind and scope (re-derived from the records), replacing the old."""
        old = self.credential(credential_id)
        if old.status != "active":
            raise VaultError(
                f"credential {credential_id} is {old.status}; {old.status} credentials are not renewed"
            )
        return self.issue(
            old.employee_id,
            kind=old.credential.kind,
            scope=old.credential.scope,
            actor=actor,
            valid_for=valid_for,
            renews=credential_id,
        )

    def _set_status(
        self, credential_id: str, *, status: str, reason: str, actor: str, kind: str
    ) -> IssuedCredential:
        current = self.credential(credential_id)
        allowed_from = {
            "suspended": ("active",),
            "revoked": ("active", "suspended"),
            "active": ("suspended",),
        }
        if current.status not in allowed_from[status]:
            raise VaultError(f"credential {credential_id} is {current.status}; it cannot become {status}")
        now = self.clock()
        with database.connect(self.url) as conn:
            changed = conn.execute(
                "UPDATE vault.credentials SET status = %s, status_at = %s, status_reason = %s"
                " WHERE credential_id = %s AND status = ANY(%s)",
                (status, now, reason, credential_id, list(allowed_from[status])),
            ).rowcount
            if changed != 1:  # someone else changed it between our read and this update
                raise VaultError(
                    f"credential {credential_id} changed meanwhile; it cannot become {status} now"
                )
            self.ledger.append(
                kind=kind,
                subject=f"person:{current.employee_id}",
                data={
                    "credential_id": credential_id,
                    "badge_id": current.credential.subject,
                    "reason": reason,
                },
                actor=actor,
            )
        log.info(kind.replace("credential.", "credential "), credential_id=credential_id, actor=actor)
        return self.credential(credential_id)

    def suspend(self, credential_id: str, *, reason: str, actor: str) -> IssuedCredential:
        return self._set_status(
            credential_id, status="suspended", reason=reason, actor=actor, kind="credential.suspended"
        )

    def reinstate(self, credential_id: str, *, reason: str, actor: str) -> IssuedCredential:
        return self._set_status(
            credential_id, status="active", reason=reason, actor=actor, kind="credential.reinstated"
        )

    def revoke(self, credential_id: str, *, reason: str, actor: str) -> IssuedCredential:
        return self._set_status(
            credential_id, status="revoked", reason=reason, actor=actor, kind="credential.revoked"
        )

    # -- what stations get ------------------------------------------------------------------

    def issuer_keys(self) -> list[VerifyingKey]:
        with database.connect(self.url) as conn:
            rows = conn.execute("SELECT public_key FROM vault.issuer_keys ORDER BY added_at").fetchall()
        return [VerifyingKey.from_json(r["public_key"]) for r in rows]

    def revocations(self) -> list[Revocation]:
        """Every revoked or suspended credential not yet expired (expired ones are refused anyway)."""
        now = self.clock()
        with database.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT credential_id, status, status_at, status_reason FROM vault.credentials"
                " WHERE status <> 'active' AND expires_at > %s ORDER BY status_at",
                (now,),
            ).fetchall()
        return [
            Revocation(str(r["credential_id"]), Reason(r["status"]), r["status_at"], r["status_reason"] or "")
            for r in rows
        ]

    def station_badges(self, station: str) -> list[distribution.BadgeCredentials]:
        """Badges allowed at ``station`` (an active access credential for it) with all their live tokens."""
        now = self.clock()
        live = [c for c in self.credentials() if c.status == "active" and c.credential.expires_at > now]
        allowed = {
            c.employee_id
            for c in live
            if c.credential.kind is Kind.ACCESS and c.credential.scope.get("station") == station
        }
        badges: dict[str, list[str]] = {}
        for c in live:
            if c.employee_id in allowed and c.credential.station in (None, station):
                badges.setdefault(c.credential.subject, []).append(c.token)
        return [distribution.BadgeCredentials(badge, tuple(t)) for badge, t in sorted(badges.items())]
