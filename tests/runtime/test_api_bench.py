"""``smart bench api``'s figures at a tiny size on the session's PostgreSQL (their shape, never a time)."""

from __future__ import annotations

import json
from pathlib import Path

from smart.runtime import api_bench
from smart.runtime.background import BackgroundFloor


def test_bench_api_measures_the_client_api_beside_a_bare_route_as_one_json_object(
    postgres_floor: BackgroundFloor, tmp_path: Path
) -> None:
    figures = api_bench.run(
        postgres_floor.floor.database_url("postgres"),
        work_dir=tmp_path,
        requests=20,
        rate=50,
        pos=5,
        rounds=2,
    )
    shown = json.loads(json.dumps(figures.as_json()))
    for key in ("p99_ms", "bare_p99_ms", "requests_per_s"):
        assert isinstance(shown[key], float) and shown[key] > 0, key
    for key in ("server_cpu_ms", "bare_server_cpu_ms", "database_cpu_ms", "load_before", "load_after"):
        assert isinstance(shown[key], float) and shown[key] >= 0, key
    assert shown["requests"] == 20 and shown["refused"] == 0  # the key read its own POs, every time
    assert shown["rounds"] == 2 and len(shown["rounds_p99_ms"]) == len(shown["rounds_bare_p99_ms"]) == 2
    assert isinstance(shown["generator_late_p99_ms"], float) and shown["generator_late_p99_ms"] >= 0
