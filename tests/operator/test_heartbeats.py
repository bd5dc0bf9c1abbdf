"""Station status from heartbeats: what a heartbeat says becomes the Station's status fields."""

from __future__ import annotations

import json
import time
from pathlib import Path

from smart.bus import subjects
from smart.contracts import manifests
from smart.contracts.models import Station
from smart.operator import heartbeats

REPO = Path(__file__).resolve().parents[2]


def _station(station_id: str) -> Station:
    for loaded in manifests.load([REPO / "contracts"]):
        manifest = loaded.manifest
        if isinstance(manifest, Station) and manifest.spec.station_id == station_id:
            return manifest
    raise LookupError(station_id)


def _heard(body: dict[str, object]) -> heartbeats.Heartbeat:
    heard = heartbeats.parse(
        subjects.heartbeat("pt-1"),
        json.dumps(body).encode(),
        heard_at=time.monotonic(),
        heard_wall=time.time(),
    )
    assert heard is not None
    return heard


def test_mirror_lag_is_how_many_messages_the_stations_mirrors_are_behind_the_hub() -> None:
    body = {"station": "pt-1", "revisions": {"penetrant": "ab" * 32}, "ledger_lag": 0, "mirror_lag": 37}
    status = heartbeats.desired(
        _station("pt-1"), _heard(body), now=time.monotonic(), listening_since=0.0, offline_after_s=10
    )
    assert status is not None and status["mirrorLag"] == 37


def test_a_heartbeat_that_does_not_say_its_mirror_lag_leaves_the_figure_out() -> None:
    body = {"station": "pt-1", "revisions": {}, "ledger_lag": 3}
    status = heartbeats.desired(
        _station("pt-1"), _heard(body), now=time.monotonic(), listening_since=0.0, offline_after_s=10
    )
    assert status is not None and "mirrorLag" not in status and status["ledgerLag"] == 3
