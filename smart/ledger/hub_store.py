"""The hub's global log in PostgreSQL: node batches in, one gapless Merkle-tree log out.

``HubLog.ingest`` takes a node's batch, checks its chain and signed head,
and, under one sequencer (a transaction-scoped advisory lock), gives its new
entries the next global indexes, integrates them into the RFC 9162 tree,
signs a checkpoint consistent with the last one, and writes it all with COPY
in one transaction. A replayed batch changes nothing; an entry that conflicts
with one already stored for the same (node, node_seq) is refused and raised
as a fork alarm.

Like a node's ``NodeLog``, it is a ``store.LogStore`` (``size()``,
``entries(start, stop)``), so readers treat both stores alike; its signed
state is ``checkpoint()``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import rfc8785
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg import sql

from smart.keys import SigningKey, VerifyingKey
from smart.ledger import bundle, merkle, trust
from smart.ledger.batch import Batch
from smart.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointSigner,
    InconsistentCheckpoint,
    NoteSignature,
    SignedCheckpoint,
    signature_verifies,
)
from smart.ledger.entry import GENESIS, Entry, EntryError, chain_fields
from smart.ledger.trust import ADMIN_KEY, Registration, Role, Trust, TrustError
from smart.ledger.witness import Witness

log = structlog.get_logger("smart.ledger")

#: The role hub services connect as: INSERT and SELECT on the ledger, nothing else.
APP_ROLE = "smart_app"
#: The name of the hub's key in the keys directory: it signs checkpoints (and contract bundles).
HUB_KEY = "hub"
#: The origin line of our checkpoints (C2SP: a schema-less URL naming the log).
ORIGIN = trust.ORIGIN
#: Perfect subtrees from this level up are stored; below it they are recomputed from 256 entries at most.
STORED_LEVEL = 8

TABLES = (
    "ledger_nodes",
    "ledger_witnesses",
    "ledger_entries",
    "ledger_heads",
    "ledger_subtrees",
    "ledger_checkpoints",
    "ledger_cosignatures",
    "ledger_alarms",
    "ledger_registrations",
    "ledger_alarm_decisions",
)

_SEQUENCER = "smart.ledger.sequencer"


class IngestError(ValueError):
    """A batch the hub will not take; the message names the node, the sequence number and why."""


class ChainGap(IngestError):
    """The batch starts after a node_seq the hub has not seen: ship the missing entries first."""


class ForkAlarm(IngestError):
    """A node offered an entry that conflicts with the one stored for the same (node, node_seq)."""


class LedgerBlocked(IngestError):
    """The node's ledger has an open alarm (a fork, a refused entry): nothing more of it is taken
    until an administrator decides the alarm (``smart ledger alarms decide``)."""


#: Alarms that stop a node's ledger until an administrator decides; others (a witness's view of
#: a rollback) are reported but stop nothing.
BLOCKING = ("fork", "refused")
DECISION = "smart-ledger-alarm-decision/v1"


@dataclass(frozen=True, slots=True)
class Alarm:
    """One ledger alarm: who, at which entry, what kind, why, and the administrator's decision if any."""

    id: int
    raised_at: datetime
    node: str
    node_seq: int
    kind: str
    detail: str
    decision: str | None = None
    decided_by: str | None = None

    @property
    def open(self) -> bool:
        return self.decision is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "raised_at": self.raised_at.isoformat(),
            "node": self.node,
            "node_seq": self.node_seq,
            "kind": self.kind,
            "detail": self.detail,
            "open": self.open,
            "decision": self.decision,
            "decided_by": self.decided_by,
        }


def blocked_reason(alarm: Alarm) -> str:
    return (
        f"the ledger of {alarm.node} is blocked by alarm #{alarm.id} ({alarm.kind} at #{alarm.node_seq}: "
        f"{alarm.detail}) until an administrator decides it"
    )


def decision_statement(alarm: Alarm, decision: str, by: str) -> bytes:
    """What the administrator signs to decide ``alarm``: canonical JSON naming the alarm exactly."""
    return rfc8785.dumps(
        {
            "format": DECISION,
            "alarm": alarm.id,
            "node": alarm.node,
            "node_seq": alarm.node_seq,
            "kind": alarm.kind,
            "detail": alarm.detail,
            "decision": decision,
            "by": by,
        }
    )


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one ingest did: how many new entries, at which global indexes, and the checkpoint signed."""

    node: str
    first_index: int
    count: int
    checkpoint: SignedCheckpoint | None


def schema() -> str:
    return importlib.resources.files("smart.ledger").joinpath("schema.sql").read_text()


def migrate(owner_url: str, *, app_role: str = APP_ROLE, app_password: str | None = None) -> None:
    """Create or update the ledger tables as the owner role, and give ``app_role`` INSERT/SELECT only.

    Roles belong to the whole cluster, not to one database, so the role is
    created only if missing (and a concurrent creator is not an error), and its
    password is set only when the role cannot sign in with ``app_password``
    already (:func:`ensure_role`).
    """
    with psycopg.connect(owner_url, autocommit=True) as conn:
        ensure_role(conn, app_role, app_password)
        conn.execute(schema())
        role = sql.Identifier(app_role)
        for table in TABLES:
            name = sql.Identifier(table)
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, role))
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON TABLE {} TO {}").format(name, role))
        conn.execute(sql.SQL("GRANT SELECT ON ledger_log TO {}").format(role))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE ledger_alarms_id_seq TO {}").format(role))
    log.info("ledger schema migrated", app_role=app_role)


def ensure_role(conn: psycopg.Connection[Any], role: str, password: str | None) -> None:
    """Create ``role`` if missing; with ``password``, make sure it signs in with that password.

    A role is the whole server's, shared by every database on it (two hubs' databases, or every
    test's): setting its password at every migration would cut off every other database's new
    connections as that role whenever two callers hold different passwords. So the password is
    set when the role is created, or when it does not sign in with ``password`` (a role made
    without login by another migration, or a secret file replaced on purpose to rotate it), and
    is left alone when it already does.
    """
    name = sql.Identifier(role)
    row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if row is None:
        create = (
            sql.SQL("CREATE ROLE {} NOLOGIN").format(name)
            if password is None
            else sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(name, sql.Literal(password))
        )
        try:
            conn.execute(create)
            return
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # created by another migration in the same cluster meanwhile: check it as found
    if password is None or (row is not None and row[0] and signs_in(conn, role, password)):
        return
    conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(name, sql.Literal(password)))
    log.info("database role password set", role=role, database=conn.info.dbname)


def signs_in(conn: psycopg.Connection[Any], role: str, password: str) -> bool:
    """Whether ``role`` can open a connection with ``password`` to ``conn``'s database now."""
    try:
        with psycopg.connect(conn.info.dsn, user=role, password=password, connect_timeout=30):
            return True
    except psycopg.OperationalError:
        return False


class HubLog:
    """The global log on one connection; one per thread (the sequencer lock serialises ingests)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        key: SigningKey | None = None,
        origin: str = ORIGIN,
        admin: SigningKey | VerifyingKey | None = None,
    ) -> None:
        # Reads are single statements; writes are explicit transactions (``conn.transaction()``).
        conn.autocommit = True
        self.conn = conn
        self._keys: dict[str, VerifyingKey] = {}
        self.key = key
        self.origin = origin
        # The administrator's key: only registrations it signed establish a node or witness key.
        self.admin = admin
        # The (size, note) of the last checkpoint this HubLog signed and committed: extending it
        # needs no second look at its signature.
        self._signed_note: tuple[int, str] | None = None

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        key: SigningKey | None = None,
        origin: str = ORIGIN,
        admin: SigningKey | VerifyingKey | None = None,
    ) -> HubLog:
        return cls(psycopg.connect(url, autocommit=True), key=key, origin=origin, admin=admin)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HubLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who may write --------------------------------------------------------------------

    def register_node(self, node: str, key: VerifyingKey, *, admin: SigningKey | None = None) -> None:
        """Establish ``key`` for ``node``'s signed heads, signed by the administrator's key.

        Again with the same key is a no-op; another key for an established node is refused.
        """
        self._register("node", node, key, admin)

    def register_witness(self, key: VerifyingKey, *, admin: SigningKey | None = None) -> None:
        """Establish ``key`` as the witness of its name, signed by the administrator's key."""
        self._register("witness", key.name, key, admin)

    def _register(self, role: Role, name: str, key: VerifyingKey, admin: SigningKey | None) -> None:
        signer = admin if admin is not None else self.admin
        if not isinstance(signer, SigningKey):
            raise TrustError(f"registering {role} {name} needs the administrator's key ({ADMIN_KEY})")
        if self.admin is None:
            self.admin = signer
        established = established_keys(self.conn, role, signer.verifying).get(name)
        if established is not None:
            if established.raw != key.raw:
                raise IngestError(
                    f"{role} {name} is registered with key {established.key_id}, not {key.key_id}"
                )
            return
        registration = Registration(role, name, key)
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO ledger_registrations (role, name, key_name, public_key, signature)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (role, name, key.name, key.raw, registration.sign(signer)),
            )
        log.info("ledger key established", role=role, name=name, key_id=key.key_id)

    @property
    def admin_key(self) -> VerifyingKey | None:
        return self.admin.verifying if isinstance(self.admin, SigningKey) else self.admin

    def node_keys(self) -> dict[str, VerifyingKey]:
        """The node keys the administrator established (none without the administrator's key)."""
        admin = self.admin_key
        return {} if admin is None else established_keys(self.conn, "node", admin)

    def witness_keys(self) -> dict[str, VerifyingKey]:
        """The witness keys the administrator established (none without the administrator's key)."""
        admin = self.admin_key
        return {} if admin is None else established_keys(self.conn, "witness", admin)

    def trust(self, log_key: VerifyingKey | None = None) -> Trust:
        """What a verifier of this log should trust: its key and origin, established witnesses and nodes."""
        key = log_key or (self.key.verifying if self.key is not None else None)
        if key is None:
            raise TrustError("no log key: the trust names the key that signs this log's checkpoints")
        return Trust(key, self.origin, self.witness_keys(), self.node_keys())

    # -- ingest ---------------------------------------------------------------------------

    def ingest(self, batch: Batch) -> Ingested:
        """Take a node's batch into the global log exactly once; see the module docstring.

        Entries are parsed and checked field by field where they enter the
        process (``Entry.create``, ``Entry.from_bytes``, ``Batch.from_bytes``
        for the wire); here the chain is re-derived from their bytes alone.
        """
        outcome = self.ingest_many([batch])[0]
        if isinstance(outcome, IngestError):
            raise outcome
        return outcome

    def ingest_many(self, batches: Sequence[Batch]) -> list[Ingested | IngestError]:
        """Take several batches, in order, in one transaction under the sequencer; one checkpoint for all.

        Each batch gets the outcome ``ingest`` would have given it had the batches come one by one
        (a batch refused, early or forked changes nothing, and later batches of its node are judged
        against what the hub then holds); the ones taken share one signed checkpoint, of the size
        after the last. A backlog of many batches thus costs one commit, one Merkle pass and one
        signature instead of one each. Errors of the whole (the database, an inconsistent last
        checkpoint) raise and take nothing.
        """
        key = self.key
        if key is None:
            raise IngestError("this HubLog has no signing key: it can read but not ingest")
        outcomes: list[Ingested | IngestError | None] = [None] * len(batches)
        checked: list[tuple[int, Batch, list[bytes]]] = []
        blocked = self.blocking_alarms(sorted({batch.node for batch in batches}))
        for at, batch in enumerate(batches):
            alarm = blocked.get(batch.node)
            if alarm is not None:
                outcomes[at] = LedgerBlocked(blocked_reason(alarm))
                continue
            try:
                checked.append((at, batch, self._validate(batch)))
            except IngestError as err:
                outcomes[at] = err
        forks: list[tuple[int, _Fork]] = []
        if checked:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_SEQUENCER,))
                signed = self._sequence(checked, key, outcomes, forks)
            if signed is not None:  # committed
                self._signed_note = (signed.checkpoint.size, signed.text())
        for at, fork in forks:
            outcomes[at] = self._raise_alarm(fork)
        judged = [outcome for outcome in outcomes if outcome is not None]
        assert len(judged) == len(batches), "every batch gets an outcome"
        return judged

    def _validate(self, batch: Batch) -> list[bytes]:
        """Check the batch from its bytes alone, before taking the sequencer; return its leaf hashes.

        The chain is re-derived from the entry bytes (each entry's node,
        node_seq and prev as its canonical tail has them, each hash computed
        here), so nothing about a batch is taken from the objects it arrived in.
        """
        node, entries = batch.node, batch.entries
        if not entries:
            raise IngestError(f"batch from {node} has no entries")
        prefix = f'"node":"{node}","node_seq":'.encode()
        seq, prev = entries[0].node_seq, entries[0].prev
        leaves: list[bytes] = []
        sha256 = hashlib.sha256
        for entry in entries:
            raw = entry.raw
            tail = b"".join((prefix, str(seq).encode(), b',"prev":"', prev.hex().encode(), b'","subject":"'))
            if not (
                raw.startswith(tail, raw.rfind(b'"node":'))
                and raw[:10] == b'{"actor":"'
                and raw[-2:] == b'"}'
            ):
                raise IngestError(f"batch from {node}: entry #{seq} {_why_not_next(raw, node, seq, prev)}")
            prev = sha256(raw).digest()
            leaves.append(sha256(b"\x00" + raw).digest())
            seq += 1
        head = batch.head
        if (head.node, head.node_seq, head.entry_hash) != (node, seq - 1, prev):
            raise IngestError(
                f"batch from {node}: signed head #{head.node_seq} does not name its last entry #{seq - 1}"
            )
        if not head.verify(self._node_key(node)):
            raise IngestError(f"batch from {node}: signed head #{head.node_seq} does not verify with its key")
        return leaves

    def _node_key(self, node: str) -> VerifyingKey:
        key = self._keys.get(node)
        if key is None:
            found = self.node_keys().get(node)
            if found is None:
                raise IngestError(
                    f"node {node} is not registered by the hub's administrator: no key to check its head"
                )
            key = self._keys[node] = found
        return key

    def _sequence(
        self,
        checked: list[tuple[int, Batch, list[bytes]]],
        key: SigningKey,
        outcomes: list[Ingested | IngestError | None],
        forks: list[tuple[int, _Fork]],
    ) -> SignedCheckpoint | None:
        """Give the new entries of ``checked`` batches their global indexes, integrate, sign, write.

        Fills ``outcomes`` (by each batch's position) and ``forks``, returns the checkpoint signed
        (``None`` if nothing was new); runs inside the transaction that holds the sequencer.
        """
        nodes = sorted({batch.node for _, batch, _ in checked})
        tips: dict[str, tuple[int, bytes]] = {node: (-1, GENESIS) for node in nodes}
        for node, node_seq, hash_ in self.conn.execute(
            "SELECT DISTINCT ON (node) node, node_seq, entry_hash FROM ledger_heads"
            " WHERE node = ANY(%s) ORDER BY node, node_seq DESC",
            (nodes,),
        ).fetchall():
            tips[node] = (node_seq, bytes(hash_))
        state = self.conn.execute(
            "SELECT size, note, frontier FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        if state is None:
            old, last = merkle.Frontier.empty(), None
        else:
            old = merkle.Frontier.from_bytes(state[0], bytes(state[2]))
            last = self._last_signed(state[1], key, state[0])

        start = old.size
        rows: list[tuple[int, str, int, bytes]] = []  # idx, node, node_seq, entry
        new_leaves: list[bytes] = []
        heads: list[tuple[str, int, int, bytes, str, bytes]] = []
        taken: list[tuple[int, str, int, int]] = []  # position, node, first index, count
        pending: dict[tuple[str, int], bytes] = {}  # entries taken earlier in this transaction
        for at, batch, leaves in checked:
            node = batch.node
            last_seq, last_hash = tips[node]
            entries = list(batch.entries)
            try:
                if batch.first_seq <= last_seq:
                    self._check_replay(node, [e for e in entries if e.node_seq <= last_seq], pending)
                    skip = last_seq + 1 - batch.first_seq
                    entries, leaves = entries[skip:], leaves[skip:]
                    if not entries:
                        log.debug("replayed batch ignored", node=node, node_seq=batch.last_seq)
                        outcomes[at] = Ingested(node, -1, 0, None)
                        continue
                first = entries[0]
                if first.node_seq > last_seq + 1:
                    outcomes[at] = ChainGap(
                        f"batch from {node} starts at #{first.node_seq}; the hub holds up to #{last_seq}: "
                        f"ship from #{last_seq + 1}"
                    )
                    continue
                if first.prev != last_hash:
                    detail = f"#{first.node_seq} does not link to stored #{last_seq}"
                    raise _Fork(node, first.node_seq, detail, None, first.raw)
            except _Fork as fork:
                forks.append((at, fork))
                continue
            index = start + len(rows)
            for entry in entries:
                rows.append((start + len(rows), node, entry.node_seq, entry.raw))
                pending[(node, entry.node_seq)] = entry.raw
            new_leaves.extend(leaves)
            head = batch.head
            heads.append(
                (node, head.node_seq, start + len(rows) - 1, head.entry_hash, head.key_id, head.signature)
            )
            tips[node] = (head.node_seq, head.entry_hash)
            taken.append((at, node, index, len(entries)))
        if not rows:
            return None

        new, done = old.extend(new_leaves, keep_level=1)
        completed = {(level, index): h for level, index, h in done}
        checkpoint = Checkpoint(self.origin, new.size, new.root())
        source = _FrontierSource(old, completed, new_leaves)
        proof = merkle.prove(merkle.consistency_ranges(old.size, new.size), source.subtree)
        signer = CheckpointSigner(key, origin=self.origin, last=last.checkpoint if last else None)
        signed = signer.sign(checkpoint, proof)

        stored = [(lv, i, h) for (lv, i), h in completed.items() if lv >= STORED_LEVEL]
        with self.conn.cursor() as cur:
            with cur.copy(
                "COPY ledger_entries (idx, node, node_seq, entry) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "text", "int8", "bytea"])
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                "WITH subtrees AS (INSERT INTO ledger_subtrees (level, idx, hash)"
                "                  SELECT * FROM unnest(%s::int2[], %s::int8[], %s::bytea[])),"
                " heads AS (INSERT INTO ledger_heads (node, node_seq, idx, entry_hash, key_id, signature)"
                "           SELECT * FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::bytea[],"
                "                                %s::text[], %s::bytea[]))"
                " INSERT INTO ledger_checkpoints (size, root, note, frontier) VALUES (%s, %s, %s, %s)",
                (
                    [lv for lv, _, _ in stored],
                    [i for _, i, _ in stored],
                    [h for _, _, h in stored],
                    *(list(column) for column in zip(*heads, strict=True)),
                    new.size,
                    checkpoint.root,
                    signed.text(),
                    new.to_bytes(),
                ),
            )
        for at, node, index, count in taken:
            outcomes[at] = Ingested(node, index, count, signed)
        log.info("batches integrated", batches=len(taken), count=len(rows), size=new.size)
        return signed

    def _last_signed(self, note: str, key: SigningKey, size: int) -> SignedCheckpoint:
        """The stored latest checkpoint: this hub's (checked, unless this HubLog wrote it)."""
        try:
            last = SignedCheckpoint.parse(note)
            if self._signed_note != (size, note):
                last.verify(key.verifying)
        except CheckpointError as err:
            raise InconsistentCheckpoint(
                f"refusing to extend checkpoint of size {size}: not signed by this hub: {err}"
            ) from err
        return last

    def _check_replay(self, node: str, offered: list[Entry], pending: dict[tuple[str, int], bytes]) -> None:
        """Entries offered again must be byte for byte the ones held (stored, or taken just before)."""
        stored = {seq: raw for (n, seq), raw in pending.items() if n == node}
        unknown = [e.node_seq for e in offered if e.node_seq not in stored]
        if unknown:
            rows = self.conn.execute(
                "SELECT node_seq, entry FROM ledger_entries WHERE node = %s AND node_seq BETWEEN %s AND %s",
                (node, min(unknown), max(unknown)),
            ).fetchall()
            stored.update({seq: bytes(raw) for seq, raw in rows})
        for entry in offered:
            if stored.get(entry.node_seq) != entry.raw:
                raise _Fork(
                    node,
                    entry.node_seq,
                    f"#{entry.node_seq} differs from the entry already in the log",
                    stored.get(entry.node_seq),
                    entry.raw,
                )

    def _raise_alarm(self, fork: _Fork) -> ForkAlarm:
        alarm = self.raise_alarm(
            fork.node, fork.node_seq, "fork", fork.detail, stored=fork.stored, offered=fork.offered
        )
        log.error(
            "fork alarm: conflicting ledger entry refused",
            node=fork.node,
            node_seq=fork.node_seq,
            detail=fork.detail,
            alarm=alarm,
        )
        return ForkAlarm(f"fork alarm #{alarm}: node {fork.node} {fork.detail}")

    def raise_alarm(
        self,
        node: str,
        node_seq: int,
        kind: str,
        detail: str,
        *,
        stored: bytes | None = None,
        offered: bytes | None = None,
    ) -> int:
        """Record an alarm (kinds: ``fork``, ``refused``, ``rollback``, …); returns its id."""
        with self.conn.transaction():
            row = self.conn.execute(
                "INSERT INTO ledger_alarms (node, node_seq, detail, stored, offered, kind)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (node, node_seq, detail, stored, offered, kind),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def alarms(self) -> list[tuple[str, int, str]]:
        rows = self.conn.execute("SELECT node, node_seq, detail FROM ledger_alarms ORDER BY id").fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def ledger_alarms(self, *, nodes: Sequence[str] | None = None, open_only: bool = False) -> list[Alarm]:
        """Every alarm (of ``nodes``), each with the administrator's decision if one verifies."""
        query = "SELECT id, raised_at, node, node_seq, kind, detail FROM ledger_alarms"
        params: tuple[Any, ...] = ()
        if nodes is not None:
            query += " WHERE node = ANY(%s)"
            params = (list(nodes),)
        alarms = [Alarm(*row) for row in self.conn.execute(query + " ORDER BY id", params).fetchall()]
        if not alarms:
            return []
        decided: dict[int, tuple[str, str]] = {}
        admin = self.admin_key
        by_id = {alarm.id: alarm for alarm in alarms}
        for alarm_id, by, decision, signature in self.conn.execute(
            "SELECT alarm_id, decided_by, decision, signature FROM ledger_alarm_decisions"
            " WHERE alarm_id = ANY(%s) ORDER BY decided_at",
            ([a.id for a in alarms],),
        ).fetchall():
            alarm = by_id[alarm_id]
            if admin is not None and admin.verify(bytes(signature), decision_statement(alarm, decision, by)):
                decided.setdefault(alarm_id, (decision, by))
            else:
                log.error("alarm decision not signed by the administrator: ignored", alarm=alarm_id)
        judged = [
            Alarm(a.id, a.raised_at, a.node, a.node_seq, a.kind, a.detail, *decided.get(a.id, (None, None)))
            for a in alarms
        ]
        return [a for a in judged if a.open] if open_only else judged

    def blocking_alarms(self, nodes: Sequence[str]) -> dict[str, Alarm]:
        """The first open alarm that blocks each of ``nodes``' ledgers (one cheap query when none)."""
        row = self.conn.execute(
            "SELECT 1 FROM ledger_alarms WHERE node = ANY(%s) AND kind = ANY(%s) LIMIT 1",
            (list(nodes), list(BLOCKING)),
        ).fetchone()
        if row is None:
            return {}
        blocking: dict[str, Alarm] = {}
        for alarm in self.ledger_alarms(nodes=nodes, open_only=True):
            if alarm.kind in BLOCKING:
                blocking.setdefault(alarm.node, alarm)
        return blocking

    def decide_alarm(self, alarm_id: int, *, decision: str, by: str, admin: SigningKey) -> Alarm:
        """Close an alarm with the administrator's signed decision (the caller also puts it on the ledger)."""
        if admin.name != ADMIN_KEY:
            raise TrustError(f"alarms are decided with the {ADMIN_KEY} key, not {admin.name!r}")
        if not decision.strip() or not by.strip():
            raise TrustError("a decision says what was decided and who decided it")
        found = [a for a in self.ledger_alarms() if a.id == alarm_id]
        if not found:
            raise TrustError(f"no ledger alarm #{alarm_id}")
        alarm = found[0]
        if not alarm.open:
            raise TrustError(f"alarm #{alarm_id} was already decided by {alarm.decided_by}: {alarm.decision}")
        signature = admin.sign(decision_statement(alarm, decision, by))
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO ledger_alarm_decisions (alarm_id, decided_by, decision, signature)"
                " VALUES (%s, %s, %s, %s)",
                (alarm_id, by, decision, signature),
            )
        log.warning("ledger alarm decided", alarm=alarm_id, node=alarm.node, by=by, decision=decision)
        return Alarm(
            alarm.id, alarm.raised_at, alarm.node, alarm.node_seq, alarm.kind, alarm.detail, decision, by
        )

    # -- reading --------------------------------------------------------------------------

    def size(self) -> int:
        row = self.conn.execute("SELECT coalesce(max(size), 0) FROM ledger_checkpoints").fetchone()
        return int(row[0]) if row else 0

    def node_size(self, node: str) -> int:
        """How many of ``node``'s entries the hub holds: the node_seq to ship from next."""
        row = self.conn.execute("SELECT max(node_seq) FROM ledger_heads WHERE node = %s", (node,)).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def entries(self, start: int, stop: int | None = None) -> list[Entry]:
        """Entries with global index ``start <= idx < stop``, in order."""
        end = self.size() if stop is None else stop
        rows = self.conn.execute(
            "SELECT entry FROM ledger_entries WHERE idx >= %s AND idx < %s ORDER BY idx", (start, end)
        ).fetchall()
        return [Entry.from_bytes(bytes(r[0]), canonical=False) for r in rows]

    def checkpoint(self, size: int | None = None) -> SignedCheckpoint:
        """The signed checkpoint of ``size`` (the latest by default), with every cosignature stored for it."""
        if size is None:
            row = self.conn.execute(
                "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        else:
            row = self.conn.execute(
                "SELECT size, note FROM ledger_checkpoints WHERE size = %s", (size,)
            ).fetchone()
        if row is None:
            raise CheckpointError(
                "the log has no checkpoint" if size is None else f"no checkpoint of size {size}"
            )
        cosigned = self.conn.execute(
            "SELECT line FROM ledger_cosignatures WHERE size = %s ORDER BY witness", (row[0],)
        ).fetchall()
        return SignedCheckpoint.parse(row[1] + "".join(line for (line,) in cosigned))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._prove(merkle.inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._prove(merkle.consistency_ranges(old_size, new_size))

    def _prove(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        known = self._subtree_hashes(merkle.needed_subtrees(ranges))
        return merkle.prove(ranges, lambda lv, i: known[(lv, i)])

    def _subtree_hashes(self, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The hashes of the perfect subtrees ``wanted``, in two queries however many proofs need them.

        Subtrees of ``STORED_LEVEL`` and up are stored; lower ones are folded from
        their entries, read at once (a packet's two dozen proofs were ~350 round
        trips when each subtree was its own query).
        """
        known: dict[tuple[int, int], bytes] = {}
        high = [(lv, i) for lv, i in wanted if lv >= STORED_LEVEL]
        if high:
            rows = self.conn.execute(
                "SELECT level, idx, hash FROM ledger_subtrees"
                " WHERE (level, idx) IN (SELECT * FROM unnest(%s::int2[], %s::int8[]))",
                ([lv for lv, _ in high], [i for _, i in high]),
            ).fetchall()
            known.update({(lv, i): bytes(h) for lv, i, h in rows})
        low = [(lv, i) for lv, i in wanted if lv < STORED_LEVEL]
        if low:
            leaves_wanted = sorted({k for lv, i in low for k in range(i << lv, (i + 1) << lv)})
            rows = self.conn.execute(
                "SELECT idx, entry FROM ledger_entries WHERE idx = ANY(%s)", (leaves_wanted,)
            ).fetchall()
            leaves = {int(k): merkle.leaf_hash(bytes(raw)) for k, raw in rows}
            for lv, i in low:
                span = range(i << lv, (i + 1) << lv)
                if any(k not in leaves for k in span):
                    raise merkle.ProofError(f"entries {span.start}..{span.stop - 1} are not all in the log")
                known[(lv, i)] = merkle.root([leaves[k] for k in span])
        missing = wanted - known.keys()
        if missing:
            raise merkle.ProofError(f"stored subtrees missing: {sorted(missing)[:3]}")
        return known

    # -- witnesses ------------------------------------------------------------------------

    def add_cosignature(self, size: int, signature: NoteSignature) -> None:
        """Keep a witness's cosignature of the checkpoint of ``size`` (checked against its registered key)."""
        witness = self.witness_keys().get(signature.name)
        if witness is None:
            raise CheckpointError(f"cosignature by {signature.name}, which is not a registered witness")
        checkpoint = self.checkpoint(size).checkpoint
        if not signature.is_cosignature or not signature_verifies(checkpoint, signature, witness):
            raise CheckpointError(f"cosignature by {signature.name} of size {size} does not verify")
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO ledger_cosignatures (size, witness, line) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (size, signature.name, signature.line()),
            )

    def witness(self, witness: Witness) -> SignedCheckpoint:
        """Offer ``witness`` the latest checkpoint and a proof from what it saw last; keep its cosignature."""
        signed = self.checkpoint()
        seen = witness.latest.size if witness.latest is not None else 0
        proof = self.consistency_proof(seen, signed.checkpoint.size) if seen <= signed.checkpoint.size else []
        signature = witness.cosign(signed, proof)
        self.add_cosignature(signed.checkpoint.size, signature)
        return self.checkpoint(signed.checkpoint.size)

    def proof_bundle(
        self, index: int, *, size: int | None = None, log_key: VerifyingKey | None = None
    ) -> bundle.ProofBundle:
        """Everything needed to prove entry ``index`` offline, against the latest (or given) checkpoint."""
        return self.proof_bundles([index], size=size, log_key=log_key)[0]

    def proof_bundles(
        self, indexes: Sequence[int], *, size: int | None = None, log_key: VerifyingKey | None = None
    ) -> list[bundle.ProofBundle]:
        """One bundle per entry of ``indexes`` (in that order), all against one checkpoint, read in one go.

        An audit packet proves every entry it cites: the checkpoint, the witness
        keys, the entries and the subtrees are read once for all of them.
        """
        log_key = log_key or (self.key.verifying if self.key is not None else None)
        if log_key is None:
            raise CheckpointError("no hub key given: a bundle must name the key that signed its checkpoint")
        if not indexes:
            return []
        signed = self.checkpoint(size)
        size_ = signed.checkpoint.size
        rows = self.conn.execute(
            "SELECT idx, entry FROM ledger_entries WHERE idx = ANY(%s)", (sorted(set(indexes)),)
        ).fetchall()
        raw = {int(i): bytes(e) for i, e in rows}
        for index in indexes:
            if index not in raw or index >= size_:
                raise merkle.ProofError(f"index {index} is not in the log of size {size_}")
        ranges = {index: merkle.inclusion_ranges(index, size_) for index in set(indexes)}
        known = self._subtree_hashes({s for r in ranges.values() for s in merkle.needed_subtrees(r)})
        witnesses = list(self.witness_keys().values())
        return [
            bundle.make(
                index=index,
                entry=raw[index],
                inclusion_proof=merkle.prove(ranges[index], lambda lv, i: known[(lv, i)]),
                checkpoint=signed,
                log_key=log_key,
                witnesses=witnesses,
            )
            for index in indexes
        ]


class _Fork(Exception):
    def __init__(self, node: str, node_seq: int, detail: str, stored: bytes | None, offered: bytes) -> None:
        super().__init__(detail)
        self.node, self.node_seq, self.detail, self.stored, self.offered = (
            node,
            node_seq,
            detail,
            stored,
            offered,
        )


@dataclass(frozen=True, slots=True)
class _FrontierSource:
    """Perfect subtrees for a consistency proof: old ones from the frontier, new ones from this batch."""

    old: merkle.Frontier
    completed: dict[tuple[int, int], bytes]
    leaves: list[bytes]

    def subtree(self, level: int, index: int) -> bytes:
        offset = 0
        for lv, h in zip(self.old.levels(), self.old.hashes, strict=True):
            if lv == level and offset == index << level:
                return h
            offset += 1 << lv
        if level == 0 and index >= self.old.size:
            return self.leaves[index - self.old.size]
        try:
            return self.completed[(level, index)]
        except KeyError:
            raise merkle.ProofError(
                f"subtree ({level}, {index}) is neither in the frontier nor new"
            ) from None


def _why_not_next(raw: bytes, node: str, seq: int, prev: bytes) -> str:
    try:
        got = chain_fields(raw)
    except EntryError as err:
        return str(err)
    if got[0] != node:
        return f"is {got[0]}'s, not {node}'s"
    if got[1] != seq:
        return f"is #{got[1]} where #{seq} comes next (a gap or disorder)"
    return "does not link to the entry before it" if got[2] != prev else "is not a canonical entry"


def established_keys(
    conn: psycopg.Connection[Any], role: Role, admin: VerifyingKey
) -> dict[str, VerifyingKey]:
    """The keys of ``role`` by name whose registration ``admin`` signed; rows without one are ignored.

    The application role may insert rows here (the hub writes registrations it was handed), so a
    row is worth nothing but its signature: one inserted by anyone without the administrator's
    private key is skipped, and logged.
    """
    rows = conn.execute(
        "SELECT name, key_name, public_key, signature FROM ledger_registrations WHERE role = %s"
        " ORDER BY registered_at",
        (role,),
    ).fetchall()
    keys: dict[str, VerifyingKey] = {}
    for name, key_name, public, signature in rows:
        try:
            key = _verifying(key_name, public)
        except ValueError:
            log.error("ledger registration unreadable: ignored", role=role, name=name)
            continue
        if not Registration(role, name, key).verifies(bytes(signature), admin):
            log.error("ledger registration not signed by the administrator: ignored", role=role, name=name)
            continue
        keys.setdefault(name, key)
    return keys


def node_keys(conn: psycopg.Connection[Any], admin: VerifyingKey) -> dict[str, VerifyingKey]:
    """The established key of every node, by node."""
    return established_keys(conn, "node", admin)


def witness_keys(conn: psycopg.Connection[Any], admin: VerifyingKey) -> dict[str, VerifyingKey]:
    """The established key of every witness, by name."""
    return established_keys(conn, "witness", admin)


def _verifying(name: str, raw: bytes) -> VerifyingKey:
    return VerifyingKey(name, Ed25519PublicKey.from_public_bytes(bytes(raw)))
