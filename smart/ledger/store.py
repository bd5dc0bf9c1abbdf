"""The few methods every ledger store answers, a node's (SQLite) or the hub's (PostgreSQL).

Readers and checkers take a ``LogStore`` and do not care which one it is, as
Trillian Tessera keeps its log logic apart from each storage driver. Writing
differs on purpose: a node appends one entry at a time and must not lose
one; the hub ingests whole batches under its sequencer.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from smart.ledger.entry import Entry


@runtime_checkable
class LogStore(Protocol):
    def size(self) -> int:
        """How many entries the log holds; positions run from 0 to ``size() - 1``."""
        ...

    def entries(self, start: int, stop: int | None = None) -> list[Entry]:
        """Entries at positions ``start <= p < stop`` (to the end when ``stop`` is None), in order."""
        ...
