"""The scraper of ``smart bench metrics``: a process of its own, as Prometheus is one.

In the station's process a client shares the station's event loop and core: its own reading of
each 55 KB answer, and its event-loop turns, were counted as the station's time to serve
``/metrics`` (and the empty route's). Here it times ``/metrics`` and the baseline route in
alternating chunks on one kept-alive connection each, and prints their milliseconds as JSON for
:func:`smart.node.metrics.measure_station_metrics_ms`.
"""

from __future__ import annotations

import json
import sys
import time

import httpx

#: Scrapes of each path before the other's turn: both see the same moments of the machine.
CHUNK = 20


def _timed(client: httpx.Client, path: str, count: int) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return times, size


def scrape(base_url: str, scrapes: int, baseline_path: str) -> dict[str, object]:
    """Milliseconds of ``scrapes`` GETs of ``/metrics`` and as many of ``baseline_path``, and the size."""
    metrics: list[float] = []
    baseline: list[float] = []
    size = 0
    with (
        httpx.Client(base_url=base_url, timeout=60) as scraper,
        httpx.Client(base_url=base_url, timeout=60) as empty,
    ):
        scraper.get("/metrics")  # warm: the connection and the first render
        empty.get(baseline_path)
        while len(metrics) < scrapes:
            chunk = min(CHUNK, scrapes - len(metrics))
            times, size = _timed(scraper, "/metrics", chunk)
            metrics += times
            baseline += _timed(empty, baseline_path, chunk)[0]
    return {"metrics_ms": metrics, "baseline_ms": baseline, "metrics_bytes": size}


def main(argv: list[str]) -> int:
    """``python -m smart.node.metrics_scraper BASE_URL SCRAPES BASELINE_PATH``."""
    base_url, scrapes, baseline_path = argv
    json.dump(scrape(base_url, int(scrapes), baseline_path), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
