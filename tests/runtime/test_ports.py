"""Ports picked in one process never repeat, though none is bound yet when the next is picked."""

from __future__ import annotations

from smart.runtime import ports


def test_blocks_picked_before_any_server_binds_never_overlap() -> None:
    # A narrow range makes random picks collide often (180 of 1,200 ports); handed-out ports must never be
    # picked again. Not narrower: other tests of the same worker may hold ports in it while this one runs.
    bases = [ports.free_block(6, low=31000, high=32200) for _ in range(30)]
    handed = [base + i for base in bases for i in range(1, 7)]
    assert len(handed) == len(set(handed)) == 180
    singles = {ports.free_port() for _ in range(50)}
    assert len(singles) == 50 and singles.isdisjoint(handed)
