"""The Merkle tree of the global log, exactly as RFC 9162 (Certificate Transparency 2.0) defines it.

Leaves are SHA-256(0x00 ‖ entry bytes), interior nodes SHA-256(0x01 ‖ left ‖
right), and a tree of n leaves splits at the largest power of two below n.
Because the tree only grows on the right, every hash a root or proof needs is
either a *perfect* subtree (2^level leaves starting at a multiple of 2^level)
or a fold of a few of them; so the hub stores perfect subtrees once and
answers roots and proofs for any size from them. A ``Frontier`` (the perfect
subtrees of the current size, a "compact range") is all it takes to append.

Proofs are lists of hashes in RFC 9162 order; the verifiers below follow the
RFC's §2.1.3.2 and §2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

EMPTY_ROOT = hashlib.sha256(b"").digest()

# Appending hashes whole blocks of 2^_BULK leaves level by level.
_BULK = 8

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof that does not prove what it claims; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` > 1): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up leaves ``[start, end)``, left to right.

    For the ranges RFC 9162 roots and proofs use (a subtree of the tree's own
    shape), folding these from the right gives the range's hash.
    """
    chunks: list[tuple[int, int]] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else 63
        while (1 << level) > end - start:
            level -= 1
        chunks.append((level, start >> level))
        start += 1 << level
    return chunks


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its perfect subtrees (left to right): fold from the right."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes (for tests, bundles and small trees)."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    # Pairing neighbours level by level and carrying an odd last node up unchanged
    # gives RFC 9162's tree: its splits are at powers of two.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# -- proofs as ranges -------------------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes prove ``index`` in a tree of ``size`` (RFC 9162 PATH)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes prove ``old_size`` extends to ``new_size`` (RFC 9162 SUBPROOF)."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, whole = 0, new_size, True
    while True:
        if old_size - start == end - start:
            if not whole:
                ranges.append((start, end))
            break
        k = split(end - start)
        if old_size - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole = False
    ranges.reverse()
    return ranges


def prove(ranges: Iterable[tuple[int, int]], subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """Hashes of ``ranges`` from a source of perfect subtree hashes ``subtree(level, index)``."""
    return [fold([subtree(level, i) for level, i in perfect_subtrees(a, b)]) for a, b in ranges]


def needed_subtrees(ranges: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every perfect subtree ``prove`` will ask for, so a store can fetch them in one go."""
    return {chunk for a, b in ranges for chunk in perfect_subtrees(a, b)}


# -- verifying (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` at ``index``; raises if the proof's shape is wrong."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32:
            raise ProofError("inclusion proof holds a hash that is not 32 bytes")
        if sn == 0:
            raise ProofError(f"inclusion proof is longer than a tree of size {size} allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is shorter than a tree of size {size} needs")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` puts ``leaf`` at ``index`` under ``root_hash``."""
    if root_from_inclusion(index, size, leaf, proof) != root_hash:
        raise ProofError(f"inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless the tree of ``new_size`` extends the one of ``old_size``."""
    if old_size > new_size:
        raise ProofError(f"size {new_size} is smaller than the earlier size {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof or any(len(p) != 32 for p in proof):
        raise ProofError(f"consistency proof from {old_size} to {new_size} is empty or malformed")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {new_size}")


# -- appending --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frontier:
    """The perfect subtrees of a tree of ``size`` leaves, biggest first: enough to append and to root."""

    size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, ())

    def root(self) -> bytes:
        return fold(self.hashes)

    def levels(self) -> list[int]:
        return [bit for bit in range(self.size.bit_length() - 1, -1, -1) if self.size >> bit & 1]

    def extend(
        self, leaves: Iterable[bytes], *, keep_level: int = 0
    ) -> tuple[Frontier, list[tuple[int, int, bytes]]]:
        """Append leaf hashes: the new frontier, and perfect subtrees completed at ``keep_level`` or above.

        Each completed subtree is ``(level, index, hash)``; a store keeps them
        so that later proofs need no recomputation above ``keep_level``.
        """
        stack = list(zip(self.levels(), self.hashes, strict=True))
        size = self.size
        done: list[tuple[int, int, bytes]] = []
        todo = leaves if isinstance(leaves, list) else list(leaves)
        at = 0

        def push(level: int, acc: bytes, count: int) -> None:
            # Add a perfect subtree of ``count`` = 2^level leaves at the right edge, merging equals.
            nonlocal size
            size += count
            while stack and stack[-1][0] == level:
                acc = node_hash(stack.pop()[1], acc)
                level += 1
                if level >= keep_level:
                    done.append((level, (size >> level) - 1, acc))
            stack.append((level, acc))

        # Leaf by leaf up to a multiple of 2^_BULK, then whole blocks of 2^_BULK leaves hashed
        # level by level (much cheaper in Python), then leaf by leaf again.
        block = 1 << _BULK
        while at < len(todo) and (size % block or len(todo) - at < block or keep_level == 0):
            if keep_level == 0:
                done.append((0, size, todo[at]))
            push(0, todo[at], 1)
            at += 1
        while len(todo) - at >= block:
            level_hashes = todo[at : at + block]
            first = size >> 1
            for level in range(1, _BULK + 1):
                lefts, rights = level_hashes[0::2], level_hashes[1::2]
                level_hashes = [_sha256(b"\x01" + a + b).digest() for a, b in zip(lefts, rights, strict=True)]
                if level >= keep_level and level < _BULK:
                    done.extend((level, first + i, h) for i, h in enumerate(level_hashes))
                first >>= 1
            root = level_hashes[0]
            if _BULK >= keep_level:
                done.append((_BULK, size >> _BULK, root))
            push(_BULK, root, block)
            at += block
        for leaf in todo[at:]:
            push(0, leaf, 1)
        return Frontier(size, tuple(h for _, h in stack)), done

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, raw: bytes) -> Frontier:
        count = size.bit_count()
        if len(raw) != 32 * count:
            raise ProofError(f"a frontier of size {size} holds {count} hashes, not {len(raw) / 32:g}")
        return cls(size, tuple(raw[i * 32 : (i + 1) * 32] for i in range(count)))
