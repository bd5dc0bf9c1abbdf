"""A station's store gives back any revision it accepted, active or replaced, and none it refused."""

from __future__ import annotations

from pathlib import Path

from smart.node.store import StationStore


def test_store_returns_accepted_revisions_and_not_refused_ones(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "store.sqlite3")
    try:
        store.record_revision("penetrant", "r1", b'{"first": 1}', refused=None)
        store.record_revision("penetrant", "r2", b'{"second": 2}', refused=None)
        store.record_revision("penetrant", "bad", b'{"forged": 1}', refused="signature does not verify")
        assert store.envelope("penetrant", "r1") == b'{"first": 1}'
        assert store.envelope("penetrant", "r2") == b'{"second": 2}'
        assert store.envelope("penetrant", "bad") is None
        assert store.envelope("penetrant", "r9") is None
        assert store.envelope("heat-treat", "r1") is None
    finally:
        store.close()
