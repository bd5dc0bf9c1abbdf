"""Names on the bus that other parts must agree with."""

from __future__ import annotations

from smart.bus import subjects
from smart.node import records


def test_stations_mirror_only_their_own_keys_of_the_records_bucket() -> None:
    assert records.RECORDS_BUCKET in subjects.STATION_KEYED_BUCKETS
    assert subjects.CONTRACTS_BUCKET in subjects.STATION_KEYED_BUCKETS
