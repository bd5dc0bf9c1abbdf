"""The ledger's fsck: re-derive every hash, link, index, signature and root from the database.

Nothing the hub wrote is taken on trust. Each entry's bytes are hashed and
checked against its node's chain (its ``prev`` link and the node's signed
heads, which also record the global index the hub gave them); the Merkle
tree is rebuilt from the entries and compared with every stored subtree and
every signed checkpoint; every signature is checked. A problem is reported
at the first global index it makes wrong, so one changed byte, a deleted
row or two swapped rows are named where they are.

The hot loop reads each entry's chain fields from its canonical tail rather
than parsing the whole entry, so a million entries verify in seconds; the
hub checked the same tail when it took each entry in, and ``full`` also
re-encodes every entry to prove it canonical.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psycopg
import structlog
from psycopg import sql

from smart.keys import VerifyingKey
from smart.ledger import hub_store, merkle
from smart.ledger.checkpoint import CheckpointError, SignedCheckpoint
from smart.ledger.entry import GENESIS, Entry, EntryError, chain_fields
from smart.ledger.head import SignedHead
from smart.ledger.hub_store import STORED_LEVEL

log = structlog.get_logger("smart.ledger")

_sha256 = hashlib.sha256
_FLUSH = 8192
_FETCH = 20000
_MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """Something wrong at a global index, in words a person can act on."""

    index: int
    why: str

    def __str__(self) -> str:
        return f"index {self.index}: {self.why}"


@dataclass(frozen=True, slots=True)
class Report:
    size: int
    problems: tuple[Problem, ...]
    checkpoints: int
    nodes: int
    #: What the witnesses' own cosigned checkpoints (handed in as evidence) say against this log:
    #: a witness that cosigned a larger tree than the hub's latest (a rolled-back hub), or another
    #: root at a size the hub also signed.
    witness_findings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and not self.witness_findings

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


@dataclass(slots=True)
class _Node:
    """What the verifier knows of one node's chain so far."""

    name: str
    prefix: bytes
    key: VerifyingKey | None
    heads: list[tuple[int, int, bytes, str, bytes]]  # (node_seq, idx, entry_hash, key_id, signature), by seq
    next_head: int = 0
    last_seq: int = -1
    last_hash: bytes = GENESIS
    last_hex: bytes = b"0" * 64
    last_idx: int = -1
    # Since the last head: where each run of consecutive (idx, node_seq) starts.
    segment: list[tuple[int, int]] = field(default_factory=list)
    suspect: tuple[int, int] | None = None  # (idx of the earlier entry, idx of the one not linking to it)

    head_seq: int = -1  # node_seq of the next signed head, -1 when none is left

    def __post_init__(self) -> None:
        self.advance(0)

    def advance(self, by: int = 1) -> None:
        self.next_head += by
        self.head_seq = self.heads[self.next_head][0] if self.next_head < len(self.heads) else -1


class VerifyError(RuntimeError):
    """The verifier itself could not run (not: the ledger is bad; that is a :class:`Report`)."""


class _Problems:
    def __init__(self) -> None:
        self.found: dict[int, str] = {}

    def add(self, index: int, why: str) -> None:
        if index not in self.found and len(self.found) < _MAX_PROBLEMS:
            self.found[index] = why


def verify_hub(
    conn: psycopg.Connection[Any],
    *,
    log_key: VerifyingKey,
    admin: VerifyingKey | None = None,
    parallel: bool = False,
    full: bool = False,
) -> Report:
    """Verify the whole global log on ``conn`` (one consistent snapshot) against the hub key ``log_key``.

    Signed heads are checked with the node keys the administrator established (``admin``, the
    ``ledger-admin`` public key); a row of the database without the administrator's signature
    is trusted for nothing, so without ``admin`` no head verifies.

    With ``parallel``, a child process rebuilds the Merkle tree from its own
    read of the same snapshot while this one checks the chains. That pays on
    a hub with idle cores; on a busy two-core machine the second read costs
    more than it saves, hence off by default. With ``full``, every entry is
    also parsed and re-encoded to prove it is canonical RFC 8785 (slow: for
    audits, not for every night).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()  # a snapshot of our own, not the tail of the caller's transaction
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _verify(conn, log_key, admin, parallel, full)


class _TreeCheck:
    """Rebuilds the Merkle tree from leaf hashes; checks stored subtrees and every signed checkpoint."""

    def __init__(
        self,
        checkpoints: list[tuple[int, bytes, str, bytes]],
        stored: dict[tuple[int, int], bytes],
        log_key: VerifyingKey,
        witness_keys: list[VerifyingKey],
    ) -> None:
        self.checkpoints = checkpoints
        self.stored = stored
        self.log_key = log_key
        self.witness_keys = witness_keys
        self.problems = _Problems()
        self.frontier = merkle.Frontier.empty()
        self.at = 0  # the next checkpoint to reach

    def feed(self, leaves: list[bytes]) -> None:
        start = 0
        while start < len(leaves):
            size = self.frontier.size
            target = self.checkpoints[self.at][0] if self.at < len(self.checkpoints) else -1
            end = len(leaves) if target <= size else min(len(leaves), start + target - size)
            self.frontier, done = self.frontier.extend(leaves[start:end], keep_level=STORED_LEVEL)
            for level, index, digest in done:
                kept = self.stored.pop((level, index), None)
                if kept != digest:
                    what = "is missing" if kept is None else "differs from the entries"
                    last = (
                        (index + 1) << level
                    ) - 1  # named where it completes: an entry before may explain it
                    self.problems.add(last, f"stored subtree (level {level}, index {index}) {what}")
            if self.frontier.size == target:
                self._checkpoint(*self.checkpoints[self.at])
                self.at += 1
            start = end

    def _checkpoint(self, size: int, root: bytes, note: str, frontier: bytes) -> None:
        at = size - 1
        if self.frontier.root() != root:
            self.problems.add(
                at, f"the first {size} entries do not have the root of the checkpoint of size {size}"
            )
        if self.frontier.to_bytes() != frontier:
            self.problems.add(at, f"stored frontier of checkpoint {size} differs from the entries")
        _check_note(self.problems, at, size, root, note, self.log_key, self.witness_keys)

    def finish(self) -> dict[int, str]:
        count = self.frontier.size
        for size, *_ in self.checkpoints[self.at :]:
            self.problems.add(
                count, f"missing: the checkpoint of size {size} counts entries up to index {size - 1}"
            )
        for level, index in self.stored:
            self.problems.add(
                index << level, f"stored subtree (level {level}, index {index}) covers entries not in the log"
            )
        return self.problems.found


def _tree_in_child(conninfo: str, snapshot: str, tree: _TreeCheck, results: Connection) -> None:
    """The child's half: read every entry of the same snapshot, hash the leaves, rebuild the tree."""
    try:
        sha256 = _sha256
        with psycopg.connect(conninfo) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            # The server prefixes the leaf byte; what it sends is hashed here, so any lie about
            # an entry would show as a wrong root.
            leaf_inputs = "SELECT '\\x00'::bytea || entry FROM ledger_entries ORDER BY idx"
            for chunk in _chunks(conn, leaf_inputs):
                tree.feed([sha256(row[0]).digest() for row in chunk])
        results.send(tree.finish())
    except BaseException as err:
        results.send(err)
    finally:
        results.close()


def _verify(
    conn: psycopg.Connection[Any],
    log_key: VerifyingKey,
    admin: VerifyingKey | None,
    parallel: bool,
    full: bool,
) -> Report:
    problems = _Problems()
    node_keys = hub_store.node_keys(conn, admin) if admin is not None else {}
    witness_keys = list(hub_store.witness_keys(conn, admin).values()) if admin is not None else []
    heads: dict[str, list[tuple[int, int, bytes, str, bytes]]] = defaultdict(list)
    for node, seq, idx, digest, key_id, signature in conn.execute(
        "SELECT node, node_seq, idx, entry_hash, key_id, signature FROM ledger_heads ORDER BY node, node_seq"
    ):
        heads[node].append((seq, idx, bytes(digest), key_id, bytes(signature)))
    cosignatures: dict[int, list[str]] = defaultdict(list)
    for size, line in conn.execute("SELECT size, line FROM ledger_cosignatures ORDER BY size, witness"):
        cosignatures[size].append(line)
    checkpoints = [
        (size, bytes(root), note + "".join(cosignatures.get(size, [])), bytes(frontier))
        for size, root, note, frontier in conn.execute(
            "SELECT size, root, note, frontier FROM ledger_checkpoints ORDER BY size"
        )
    ]
    stored = {
        (level, idx): bytes(digest)
        for level, idx, digest in conn.execute("SELECT level, idx, hash FROM ledger_subtrees")
    }
    tree = _TreeCheck(checkpoints, stored, log_key, witness_keys)
    child, results = _start_child(conn, tree) if parallel else (None, None)
    nodes: dict[str, _Node] = {}

    def node_state(name: str) -> _Node:
        state = nodes.get(name)
        if state is None:
            key = node_keys.get(name)
            state = _Node(name, f'"node":"{name}","node_seq":'.encode(), key, heads.get(name, []))
            nodes[name] = state
        return state

    # The hot loop. Most rows are the next entry of the same run of one node's batch; for
    # those only locals change. Anything else (another node, a head, a gap, a broken
    # link) takes the careful path, ``_step``, with the node's state written back first.
    expected = 0
    current: _Node | None = None
    name, prefix, last_hex = "", b"", b""
    last_seq = last_idx = head_seq = -2
    in_process = child is None
    sha256 = _sha256
    for chunk in _chunks(conn):
        for idx, node_col, seq_col, raw in chunk:
            hashed = sha256(raw)
            if (
                node_col == name
                and idx == expected
                and idx == last_idx + 1
                and seq_col == last_seq + 1
                and seq_col != head_seq
                and raw.startswith(
                    b"".join((prefix, str(seq_col).encode(), b',"prev":"', last_hex, b'","subject":"')),
                    raw.rfind(b'"node":'),
                )
            ):
                last_seq, last_idx, last_hex = seq_col, idx, hashed.hexdigest().encode()
            else:
                if current is not None:
                    _write_back(current, last_seq, last_idx, last_hex)
                if idx != expected:
                    problems.add(expected, f"missing: the next stored index is {idx}")
                    expected = idx
                current = _step(problems, node_state, idx, node_col, seq_col, raw, hashed)
                # Only a sound, open run may take the quick path next.
                name = current.name if current.suspect is None and current.segment else ""
                prefix, last_hex, head_seq = current.prefix, current.last_hex, current.head_seq
                last_seq, last_idx = current.last_seq, current.last_idx
            expected += 1
        if in_process:
            tree.feed([sha256(b"\x00" + row[3]).digest() for row in chunk])
        if full:
            for idx, _node, _seq, raw in chunk:
                try:
                    Entry.from_bytes(raw, canonical=True)
                except EntryError as err:
                    problems.add(idx, str(err))
    if current is not None:
        _write_back(current, last_seq, last_idx, last_hex)

    for state in nodes.values():
        if state.suspect is not None:
            problems.add(state.suspect[1], f"entry does not link to {state.name}'s previous entry")
        if state.segment and state.next_head >= len(state.heads):
            first_idx, first_seq = state.segment[0]
            problems.add(first_idx, f"{state.name} #{first_seq} onwards is not covered by a signed head")
        for seq, head_idx, *_ in state.heads[state.next_head :]:
            problems.add(head_idx, f"{state.name}'s signed head #{seq} names an entry that is not in the log")
    for name, node_heads in heads.items():
        if name not in nodes:
            for seq, head_idx, *_ in node_heads:
                problems.add(head_idx, f"{name}'s signed head #{seq} names an entry that is not in the log")
    if child is None or results is None:
        found_in_tree = tree.finish()
    else:
        outcome = results.recv()
        child.join()
        if isinstance(outcome, BaseException):
            raise VerifyError(f"the Merkle tree check failed to run: {outcome}") from outcome
        found_in_tree = outcome
    for index, why in found_in_tree.items():
        problems.add(index, why)
    found = tuple(sorted(Problem(i, why) for i, why in problems.found.items()))
    findings = _witness_evidence(
        conn, log_key, witness_keys, {size: root for size, root, _, _ in checkpoints}
    )
    report = Report(
        size=expected,
        problems=found,
        checkpoints=len(checkpoints),
        nodes=len(nodes),
        witness_findings=tuple(findings),
    )
    log.info("ledger verified", size=expected, problems=len(found), first=str(found[0]) if found else None)
    return report


def _witness_evidence(
    conn: psycopg.Connection[Any],
    log_key: VerifyingKey,
    witnesses: list[VerifyingKey],
    roots: dict[int, bytes],
) -> list[str]:
    """Check each witness's refusal evidence (its own cosigned checkpoint) against the hub's checkpoints.

    The evidence is a note signed by this log's key and cosigned by an established witness, so
    nobody without those keys can make one up; one that does not verify is left out.
    """
    latest = max(roots, default=0)
    findings: dict[str, str] = {}
    for witness, offered in conn.execute(
        "SELECT node, offered FROM ledger_alarms WHERE kind = 'witness' AND offered IS NOT NULL ORDER BY id"
    ):
        try:
            note = SignedCheckpoint.parse(bytes(offered).decode())
            cosigned = note.verify(log_key, witnesses, origin=hub_store.ORIGIN)
        except (CheckpointError, UnicodeDecodeError):
            continue
        if witness not in cosigned:
            continue
        size, root = note.checkpoint.size, note.checkpoint.root
        if size > latest:
            findings[witness] = (
                f"the hub's latest checkpoint (size {latest}) is older than the checkpoint of size {size} "
                f"{witness} cosigned: the hub's database was rolled back (restored from an older backup?)"
            )
        elif size in roots and roots[size] != root:
            findings[witness] = f"{witness} cosigned another root at size {size} than the hub holds: a fork"
    return list(findings.values())


def _start_child(conn: psycopg.Connection[Any], tree: _TreeCheck) -> tuple[Any, Connection | None]:
    """Fork the tree checker onto this transaction's exported snapshot (or run in-process if we cannot)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None, None
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert snapshot is not None
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    conninfo = psycopg.conninfo.make_conninfo(**params)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_tree_in_child, args=(conninfo, snapshot[0], tree, send), daemon=True)
    child.start()
    send.close()
    return child, receive


_ENTRIES = "SELECT idx, node, node_seq, entry FROM ledger_entries ORDER BY idx"


def _chunks(conn: psycopg.Connection[Any], query: str = _ENTRIES) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of the entries table in index order, in large binary chunks.

    A helper thread fetches the next chunk while this one checks the last, so
    the server reads pages while Python hashes.
    """
    chunks: queue.Queue[list[tuple[Any, ...]] | BaseException | None] = queue.Queue(maxsize=4)

    def fetch() -> None:
        try:
            with conn.cursor(name="ledger_verify", binary=True) as cur:
                cur.execute(query)
                while rows := cur.fetchmany(_FETCH):
                    chunks.put(rows)
            chunks.put(None)
        except BaseException as err:  # handed to the reader, which raises it
            chunks.put(err)

    fetcher = threading.Thread(target=fetch, name="ledger-verify-fetch", daemon=True)
    fetcher.start()
    while (chunk := chunks.get()) is not None:
        if isinstance(chunk, BaseException):
            raise chunk
        yield chunk
    fetcher.join()


def _write_back(state: _Node, last_seq: int, last_idx: int, last_hex: bytes) -> None:
    if (state.last_seq, state.last_idx) != (last_seq, last_idx):
        state.last_seq, state.last_idx, state.last_hex = last_seq, last_idx, last_hex
        state.last_hash = bytes.fromhex(last_hex.decode())


def _step(
    problems: _Problems,
    node_state: Callable[[str], _Node],
    idx: int,
    node_col: str,
    seq_col: int,
    raw: bytes,
    hashed: Any,
) -> _Node:
    """One entry the careful way: which chain it continues, whether it links, where runs and heads are."""
    digest = hashed.digest()
    state = node_state(node_col)
    if seq_col == state.last_seq + 1 and raw.startswith(
        b"".join((state.prefix, str(seq_col).encode(), b',"prev":"', state.last_hex, b'","subject":"')),
        raw.rfind(b'"node":'),
    ):
        seq = seq_col
    else:
        state, seq = _slow_path(problems, node_state, idx, node_col, seq_col, raw)
    if state.suspect is not None and state.suspect[1] == state.last_idx:
        # The earlier link broke; this entry links to the one that did not, so that one is sound.
        problems.add(state.suspect[0], f"entry does not match the link to it from {state.name}'s next entry")
        state.suspect = None
    if idx != state.last_idx + 1 or seq != state.last_seq + 1 or not state.segment:
        state.segment.append((idx, seq))  # a run of consecutive indexes and node_seqs starts here
    state.last_seq, state.last_hash, state.last_idx = seq, digest, idx
    state.last_hex = hashed.hexdigest().encode()
    if seq == state.head_seq:
        _close_segment(problems, state, idx, digest)
    return state


def _slow_path(
    problems: _Problems,
    node_state: Callable[[str], _Node],
    idx: int,
    node_col: str,
    seq_col: int,
    raw: bytes,
) -> tuple[_Node, int]:
    """The entry did not continue its chain as expected: find out exactly why, and carry on."""
    try:
        node, seq, prev = chain_fields(raw)
    except EntryError as err:
        problems.add(idx, f"entry bytes are damaged: {err}")
        state: _Node = node_state(node_col)
        if state.last_seq + 1 == seq_col:
            state.suspect = None
        return state, seq_col
    if node != node_col:
        problems.add(idx, f"the node column says {node_col!r} but the entry is {node!r}'s")
    if seq != seq_col:
        problems.add(idx, f"the node_seq column says {seq_col} but the entry is #{seq}")
    state = node_state(node)
    while 0 <= state.head_seq < seq:
        head_seq, head_idx = state.heads[state.next_head][:2]
        problems.add(head_idx, f"{node}'s signed head #{head_seq} names an entry that is not in the log")
        state.advance()
        state.segment.clear()
    if seq != state.last_seq + 1:
        problems.add(idx, f"{node} #{seq} follows #{state.last_seq}: out of order, repeated or after a gap")
    elif prev != state.last_hash:
        if state.suspect is not None:
            problems.add(
                state.suspect[1], f"entry neither links to {node}'s previous entry nor from its next"
            )
        state.suspect = (state.last_idx, idx)
    return state, seq


def _close_segment(problems: _Problems, state: _Node, idx: int, digest: bytes) -> None:
    """This entry is the one a signed head names: check the head, and where it puts the segment."""
    seq, head_idx, head_hash, key_id, signature = state.heads[state.next_head]
    state.advance()
    if digest != head_hash:
        problems.add(idx, f"entry does not match {state.name}'s signed head #{seq}")
    elif state.suspect is not None and state.suspect[1] == idx:
        problems.add(state.suspect[0], f"entry does not match the link to it from {state.name}'s next entry")
        state.suspect = None
    head = SignedHead(state.name, seq, head_hash, key_id, signature)
    if state.key is None:
        problems.add(idx, f"node {state.name!r} is not registered: no key to check its signed head #{seq}")
    elif not head.verify(state.key):
        problems.add(idx, f"{state.name}'s signed head #{seq} does not verify with its registered key")
    for run_idx, run_seq in state.segment:
        placed = head_idx - (seq - run_seq)
        if run_idx != placed:
            problems.add(run_idx, f"{state.name} #{run_seq} belongs at index {placed} by its signed head")
    state.segment.clear()


def _check_note(
    problems: _Problems,
    at: int,
    size: int,
    root: bytes,
    text: str,
    log_key: VerifyingKey,
    witnesses: list[VerifyingKey],
) -> None:
    try:
        signed = SignedCheckpoint.parse(text)
        signed.verify(log_key, witnesses, origin=hub_store.ORIGIN)
    except CheckpointError as err:
        problems.add(at, f"checkpoint of size {size}: {err}")
        return
    if (signed.checkpoint.size, signed.checkpoint.root) != (size, root):
        problems.add(at, f"checkpoint of size {size}: the signed note says size {signed.checkpoint.size}")
