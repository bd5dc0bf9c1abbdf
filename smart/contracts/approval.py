"""Two people before a rule changes: who wrote a contract revision, who approved it, and the gate.

A new revision of a contract (a changed ``spec``) is compiled and validated at once, but no
station receives it until a second person approves that exact revision. Both people prove who
they are with a signature SMART-ID made for them (a ``utility`` credential whose scope says
``signs: authorship|approval``, the contract and the revision, and the authority it was issued
on), verified exactly as every SMART-ID credential is: the issuer's pinned key, its time, the
revocation list. A typed name decides nothing. The approver must not be the author and must
hold an authority the contract's :class:`~smart.contracts.models.ApprovalPolicy` names (by
default a Level 3 in a method the contract's credential rules name, or the quality manager).

A contract marked ``emergency`` may be distributed on one Level 3's approval (who may be its
author); a second person must countersign within :data:`COUNTERSIGN_WITHIN`, or the contract is
flagged ``CountersignOverdue`` on every page until they do.

A contract's first revision needs a second person too: a new contract is a new rule on the floor.
The one exception is the floor's bootstrap (:class:`Bootstrap`): the embedded floor's first start
seeding ``./contracts/`` (``smart up``, or ``smart apply --bootstrap`` on a floor never seeded), and
an operator started with ``SMART_CONTRACT_BOOTSTRAP=true``. It is explicit (the driver passes it),
logged, and recorded as a ``contract.bootstrapped`` ledger entry naming what seeded the revision,
who ran it and from where. A floor adopting revisions its stations already hold (stations' bundles
equal to the plan, from before approvals were kept) distributes nothing new and is let through.

The record of all this (:class:`Record`) is what PolicyCentral shows as a contract's history;
drivers keep it in the ``contract-approvals`` KV bucket on the hub (:class:`KvApprovalStore`) and
write each step to the ledger (``contract.submitted``, ``contract.approved``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from smart.access import distribution as access_distribution
from smart.access.credential import Credential, Kind, Refusal
from smart.access.verify import Verifier
from smart.bus import buckets
from smart.bus.at_once import HubUnreachable
from smart.contracts import bundle
from smart.contracts.models import ApprovalPolicy, SmartContract
from smart.keys import KeyFileError, KeyStore

BUCKET = "contract-approvals"
#: SMART-ID's credential key: the one key whose signature makes a person's signature here.
SMART_ID_KEY = "smart-id"
COUNTERSIGN_WITHIN = timedelta(hours=24)
LEVEL_3, QUALITY_MANAGER = "level-3", "quality-manager"
Act = Literal["authorship", "approval"]

#: What a contract's approval state is called in its status (and in ``kubectl get smc``).
APPROVED, PENDING, COUNTERSIGN_DUE, COUNTERSIGN_OVERDUE = (
    "Approved",
    "PendingApproval",
    "CountersignDue",
    "CountersignOverdue",
)


class ApprovalRefused(ValueError):
    """An approval that cannot count; the message says what is wrong, and nothing was changed."""


class FloorUnreachable(ApprovalRefused, HubUnreachable):
    """No floor took the approval: where it was sent did not answer, before anything was read or written.

    The hub's refusal to any command a person waits on (:class:`~smart.bus.at_once.HubUnreachable`),
    said for an approval: a caller handling either takes it.

    The CLI and the hub's approval page say it at once (one try, never nats-py's two minutes of
    retries) and name where they tried by host and port only, never a URL's password. ``advice``
    says what to do; each caller adds its own (:meth:`advising`): the page names a setting, the
    CLI an option.
    """

    def __init__(self, said: str, *, where: str, advice: str) -> None:
        self.said, self.where, self.advice = said, where, advice
        ValueError.__init__(self, f"no floor took the approval: {said}; nothing was approved. {advice}")

    def advising(self, more: str) -> FloorUnreachable:
        """The same refusal with ``more`` to do (the caller's own way to reach another floor)."""
        return FloorUnreachable(self.said, where=self.where, advice=f"{self.advice}; {more}")


def spec_revision(contract: SmartContract) -> str:
    """The contract revision people approve: SHA-256 of the canonical name and spec."""
    body = contract.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(bundle.canonical({"name": contract.metadata.name, "spec": body})).hexdigest()


def policy_of(contract: SmartContract) -> ApprovalPolicy:
    return contract.spec.approval or ApprovalPolicy()


def methods_of(contract: SmartContract) -> tuple[str, ...]:
    """The NDT methods whose Level 3 may approve: those the contract's credential rules name."""
    return tuple(sorted({str(m) for r in contract.spec.rules if (m := getattr(r, "method", None))}))


def who_must_approve(contract: SmartContract) -> str:
    """In the shop's words: "a Level 3 in PT or the quality manager"."""
    policy = policy_of(contract)
    methods = methods_of(contract)
    parts = []
    if LEVEL_3 in policy.approvers and methods:
        parts.append(f"a Level 3 in {' or '.join(methods)}")
    if QUALITY_MANAGER in policy.approvers:
        parts.append("the quality manager")
    return " or ".join(parts) or "nobody (no approver authority fits this contract)"


@dataclass(frozen=True, slots=True)
class Signature:
    """One person's verified signature on one contract revision (authorship or approval)."""

    badge: str
    act: Act
    contract: str
    revision: str
    authority: str
    methods: tuple[str, ...]
    credential_id: str
    at: datetime

    def json(self) -> dict[str, Any]:
        return {
            "badge": self.badge,
            "act": self.act,
            "contract": self.contract,
            "revision": self.revision,
            "authority": self.authority,
            "methods": list(self.methods),
            "credentialId": self.credential_id,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Signature:
        return cls(
            badge=str(value["badge"]),
            act="approval" if value["act"] == "approval" else "authorship",
            contract=str(value["contract"]),
            revision=str(value["revision"]),
            authority=str(value["authority"]),
            methods=tuple(value.get("methods", ())),
            credential_id=str(value["credentialId"]),
            at=datetime.fromisoformat(str(value["at"])),
        )


def scope_for(
    *, act: Act, contract: str, revision: str, authority: str, methods: Sequence[str]
) -> dict[str, str]:
    """The scope SMART-ID puts on a contract signature credential (and this module checks)."""
    scope = {"signs": act, "contract": contract, "revision": revision, "authority": authority}
    if methods:
        scope["methods"] = ",".join(sorted(methods))
    return scope


def read_signature(
    token: str,
    *,
    verifier: Verifier,
    now: datetime,
    act: Act,
    contract: str,
    revision: str,
) -> Signature:
    """The signature ``token`` carries, if SMART-ID signed it for this act on this exact revision."""
    checked = verifier.verify(token.strip(), now=now, station="hub")
    if isinstance(checked, Refusal):
        raise ApprovalRefused(f"the {act} credential is refused: {checked.reason.value}: {checked.detail}")
    credential: Credential = checked
    scope = credential.scope
    if credential.kind is not Kind.UTILITY or scope.get("signs") != act:
        raise ApprovalRefused(
            f"credential {credential.credential_id} is not a contract {act} signature "
            f"(kind {credential.kind.value}, signs {scope.get('signs')!r})"
        )
    if scope.get("contract") != contract:
        raise ApprovalRefused(
            f"credential {credential.credential_id} signs contract {scope.get('contract')!r}, "
            f"not {contract!r}"
        )
    if scope.get("revision") != revision:
        raise ApprovalRefused(
            f"credential {credential.credential_id} signs revision {str(scope.get('revision'))[:12]}, "
            f"not {revision[:12]}"
        )
    return Signature(
        badge=credential.subject,
        act=act,
        contract=contract,
        revision=revision,
        authority=scope.get("authority", ""),
        methods=tuple(m for m in scope.get("methods", "").split(",") if m),
        credential_id=credential.credential_id,
        at=now,
    )


def fits(signature: Signature, contract: SmartContract, *, level_3_only: bool = False) -> bool:
    """Whether the signer's authority is one the contract's policy names for its methods."""
    policy = policy_of(contract)
    if signature.authority == QUALITY_MANAGER:
        return not level_3_only and QUALITY_MANAGER in policy.approvers
    if signature.authority == LEVEL_3:
        return LEVEL_3 in policy.approvers and bool(set(signature.methods) & set(methods_of(contract)))
    return False


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """The floor's first seeding, the one way a first revision goes out without a second person."""

    #: What seeded it, e.g. ``smart up (first start)``.
    by: str
    #: Who ran it: the operating-system user of ``smart up``, the operator's service account.
    user: str
    #: Where the contracts came from: a directory, or the cluster's SmartContracts.
    source: str

    def json(self) -> dict[str, str]:
        return {"by": self.by, "user": self.user, "source": self.source}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Bootstrap:
        return cls(by=str(value["by"]), user=str(value["user"]), source=str(value["source"]))


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision of a contract as people wrote and approved it."""

    revision: str
    spec: Mapping[str, Any]
    submitted: datetime
    author: Signature | None = None
    approvals: tuple[Signature, ...] = ()
    emergency: bool = False
    #: When it was first distributed (None: never).
    distributed: datetime | None = None
    #: A first revision let through without a second person: bootstrapped, or already held.
    first: bool = False
    #: The bootstrap that let it through (None: approved, adopted as held, or not yet approved).
    bootstrap: Bootstrap | None = None

    @property
    def approved(self) -> bool:
        return self.first or bool(self.approvals)

    def state(self, now: datetime) -> str:
        if not self.approved:
            return PENDING
        if self.emergency and not self.first and len({a.badge for a in self.approvals}) < 2:
            due = self.approvals[0].at + COUNTERSIGN_WITHIN
            return COUNTERSIGN_OVERDUE if now >= due else COUNTERSIGN_DUE
        return APPROVED

    def json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "spec": dict(self.spec),
            "submitted": self.submitted.isoformat(),
            "author": self.author.json() if self.author else None,
            "approvals": [a.json() for a in self.approvals],
            "emergency": self.emergency,
            "distributed": self.distributed.isoformat() if self.distributed else None,
            "first": self.first,
            "bootstrap": self.bootstrap.json() if self.bootstrap else None,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Revision:
        return cls(
            revision=str(value["revision"]),
            spec=dict(value["spec"]),
            submitted=datetime.fromisoformat(str(value["submitted"])),
            author=Signature.from_json(value["author"]) if value.get("author") else None,
            approvals=tuple(Signature.from_json(a) for a in value.get("approvals", ())),
            emergency=bool(value.get("emergency")),
            distributed=datetime.fromisoformat(str(value["distributed"]))
            if value.get("distributed")
            else None,
            first=bool(value.get("first")),
            bootstrap=Bootstrap.from_json(value["bootstrap"]) if value.get("bootstrap") else None,
        )


@dataclass(frozen=True, slots=True)
class Record:
    """A contract's revisions, oldest first, and which of them is distributed or pending."""

    contract: str
    revisions: tuple[Revision, ...] = ()
    distributed: str | None = None
    pending: str | None = None

    def find(self, revision: str) -> Revision | None:
        return next((r for r in self.revisions if r.revision == revision), None)

    def with_revision(self, revision: Revision) -> Record:
        kept = tuple(r for r in self.revisions if r.revision != revision.revision)
        if self.find(revision.revision) is None:
            return replace(self, revisions=(*kept, revision))
        return replace(
            self, revisions=tuple(revision if r.revision == revision.revision else r for r in self.revisions)
        )

    def json(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "revisions": [r.json() for r in self.revisions],
            "distributed": self.distributed,
            "pending": self.pending,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Record:
        return cls(
            contract=str(value["contract"]),
            revisions=tuple(Revision.from_json(r) for r in value.get("revisions", ())),
            distributed=value.get("distributed"),
            pending=value.get("pending"),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate decided for one planned contract: distribute now, or hold and say for whom."""

    record: Record
    revision: str
    allowed: bool
    waiting_for: str | None = None
    #: Set when this verdict made the revision pending (the driver records ``contract.submitted``).
    submitted: Revision | None = None
    state: str = APPROVED
    #: Set when this verdict let a first revision out on the floor's bootstrap (``contract.bootstrapped``).
    bootstrapped: Revision | None = None


def gate(
    contract: SmartContract,
    record: Record | None,
    *,
    held: Mapping[str, str],
    planned: Mapping[str, str],
    author: Signature | None,
    now: datetime,
    bootstrap: Bootstrap | None = None,
) -> Verdict:
    """Whether ``contract``'s revision may go to stations now, and the record as it then stands.

    Allowed: the revision distributed already (a station joining or leaving), an approved one, a
    contract's first revision on the floor's ``bootstrap``, or one its stations already hold
    exactly (``held`` equal to ``planned`` and not empty: a floor adopting what it held before
    approvals were kept). Anything else, a new contract's first revision included, is held as pending.
    """
    revision = spec_revision(contract)
    current = record or Record(contract.metadata.name)
    entry = current.find(revision)
    bootstrapped: Revision | None = None
    if entry is None:
        never = current.distributed is None and current.pending is None
        adopted = never and bool(held) and dict(held) == dict(planned)
        seeded = never and bootstrap is not None and not adopted
        entry = Revision(
            revision=revision,
            spec=contract.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            submitted=now,
            author=author if author is not None and author.revision == revision else None,
            emergency=policy_of(contract).emergency,
            first=adopted or seeded,
            bootstrap=bootstrap if seeded else None,
        )
        current = current.with_revision(entry)
        bootstrapped = entry if seeded else None
    elif entry.author is None and author is not None and author.revision == revision:
        entry = replace(entry, author=author)
        current = current.with_revision(entry)
    if revision == current.distributed or entry.approved:
        if entry.distributed is None:
            entry = replace(entry, distributed=now)
            current = current.with_revision(entry)
        pending = None if current.pending == revision else current.pending
        return Verdict(
            replace(current, distributed=revision, pending=pending),
            revision,
            True,
            state=entry.state(now),
            bootstrapped=replace(bootstrapped, distributed=entry.distributed) if bootstrapped else None,
        )
    submitted = entry if current.pending != revision else None
    waiting = who_must_approve(contract)
    if entry.author is None:
        waiting += " (the author is not proven: re-apply with the author's signature)"
    return Verdict(
        replace(current, pending=revision), revision, False, waiting, submitted=submitted, state=PENDING
    )


def approve(record: Record | None, contract: SmartContract, signature: Signature) -> Record:
    """``record`` with ``signature`` as an approval (or countersignature), or :class:`ApprovalRefused`.

    Refused, changing nothing: a revision that is neither the pending one nor an emergency one
    awaiting its countersignature; a revision whose author is not proven; approval by its author
    (except an emergency's first, by a Level 3); an approver without an authority the contract
    names; a second approval by someone who approved already.
    """
    name = contract.metadata.name
    if record is None:
        raise ApprovalRefused(f"contract {name} has no revision waiting for approval")
    entry = record.find(signature.revision)
    awaiting_countersign = (
        entry is not None
        and entry.revision == record.distributed
        and entry.emergency
        and not entry.first
        and len({a.badge for a in entry.approvals}) < 2
        and bool(entry.approvals)
    )
    if entry is None or (signature.revision != record.pending and not awaiting_countersign):
        shown = record.pending[:12] if record.pending else "none"
        raise ApprovalRefused(
            f"revision {signature.revision[:12]} of {name} is not the pending one (pending: {shown})"
        )
    if spec_revision(contract) != entry.revision and signature.revision == record.pending:
        raise ApprovalRefused(
            f"revision {signature.revision[:12]} of {name} is no longer the contract's spec "
            f"(now {spec_revision(contract)[:12]})"
        )
    if entry.author is None:
        raise ApprovalRefused(
            f"the author of revision {entry.revision[:12]} of {name} is not proven; "
            "re-apply it with the author's signature"
        )
    emergency_first = entry.emergency and not entry.approvals
    if signature.badge == entry.author.badge and not (emergency_first and signature.authority == LEVEL_3):
        raise ApprovalRefused(
            f"badge {signature.badge} wrote revision {entry.revision[:12]} of {name}; "
            "a second person must approve it"
        )
    if any(a.badge == signature.badge for a in entry.approvals):
        raise ApprovalRefused(f"badge {signature.badge} approved revision {entry.revision[:12]} already")
    if awaiting_countersign and signature.badge == entry.author.badge:
        raise ApprovalRefused(
            f"badge {signature.badge} wrote revision {entry.revision[:12]}; it cannot countersign"
        )
    if not fits(signature, contract, level_3_only=emergency_first and signature.badge == entry.author.badge):
        raise ApprovalRefused(
            f"badge {signature.badge} signs as {signature.authority or 'no authority'}"
            f"{' in ' + ','.join(signature.methods) if signature.methods else ''}; "
            f"revision {entry.revision[:12]} of {name} needs {who_must_approve(contract)}"
        )
    return record.with_revision(replace(entry, approvals=(*entry.approvals, signature)))


class ApprovalStore(Protocol):
    """Where a contract's approval record lives (the hub's KV bucket, or memory in a test)."""

    async def get(self, contract: str) -> Record | None: ...

    async def put(self, record: Record) -> None: ...


@dataclass
class MemoryApprovalStore:
    """An approval store in memory: for drivers' unit tests and benches, never for a floor."""

    records: dict[str, Record] = field(default_factory=dict)

    async def get(self, contract: str) -> Record | None:
        return self.records.get(contract)

    async def put(self, record: Record) -> None:
        self.records[record.contract] = record


async def bucket(js: JetStreamContext) -> KeyValue:
    try:
        return await js.key_value(BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=BUCKET, history=10))


class KvApprovalStore:
    """Approval records in the hub's ``contract-approvals`` bucket, one key per contract."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, contract: str) -> Record | None:
        try:
            entry = await self.kv.get(contract)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or not entry.value:
            return None
        return Record.from_json(json.loads(entry.value))

    async def put(self, record: Record) -> None:
        await self.kv.put(record.contract, json.dumps(record.json(), sort_keys=True).encode())

    async def all(self) -> list[Record]:
        # From the bucket's stream: ``keys()`` can come back short under load, hiding a pending approval.
        held = await buckets.live_entries(self.kv)
        return [Record.from_json(json.loads(held[name])) for name in sorted(held) if held[name]]


async def verifier(js: JetStreamContext, keys: KeyStore) -> Verifier:
    """A verifier pinned to SMART-ID's public key from the key directory, with the revocation list.

    Raises :class:`ApprovalRefused` when the key is not provisioned: nothing can then be approved.
    """
    try:
        pinned = keys.verifying_key(SMART_ID_KEY)
    except KeyFileError as err:
        raise ApprovalRefused(
            f"SMART-ID's public key is not provisioned, so no signature can be checked: {err}"
        ) from err
    revocations_kv = await access_distribution.bucket(js, access_distribution.REVOCATIONS_BUCKET)
    revocations = await access_distribution.read_revocations(revocations_kv)
    return Verifier(keys={pinned.key_id: pinned}, revocations=revocations)
