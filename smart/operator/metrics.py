"""The operator's Prometheus metrics and its readiness, served on one small HTTP port.

``smart operator run --metrics-port 9464`` serves ``/metrics`` (Prometheus text format) and
``/readyz`` (200 once the operator has started: hub NATS connected, hub key loaded, ledger open;
503 before). Liveness is kopf's own endpoint (``--liveness``), which also runs the probes the
handlers register. The figures a Kubernetes admin watches:

- ``smart_operator_reconciles_total{resource, outcome}``: handler runs per resource
  (``smartcontract``, ``station``) and outcome (``deployed``, ``degraded``, ``retired``, ``error``);
- ``smart_operator_errors_total{resource}``: handler runs that raised (kopf retries them);
- ``smart_operator_distribution_seconds``: from a reconcile's start to its bundles being in KV
  with their ledger entries written (cluster writes included, as they come first);
- ``smart_operator_ledger_blocked``: 1 while the hub refuses the operator's own ledger (a fork, an
  entry not canonical: an administrator decides the hub's alarm), else 0.
- ``smart_operator_ledger_lag_entries``: entries of the operator's own ledger the hub has not yet
  receipted (as a station's ``smart_station_ledger_lag_entries``).
"""

from __future__ import annotations

from collections.abc import Callable

import prometheus_client
from aiohttp import web

REGISTRY = prometheus_client.CollectorRegistry()

RECONCILES = prometheus_client.Counter(
    "smart_operator_reconciles",
    "Handler runs of the operator, by resource and outcome.",
    ["resource", "outcome"],
    registry=REGISTRY,
)
ERRORS = prometheus_client.Counter(
    "smart_operator_errors",
    "Handler runs that raised (kopf retries them), by resource.",
    ["resource"],
    registry=REGISTRY,
)
DISTRIBUTION = prometheus_client.Histogram(
    "smart_operator_distribution_seconds",
    "From a reconcile's start to its bundles in KV and its ledger entries written.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
LEDGER_BLOCKED = prometheus_client.Gauge(
    "smart_operator_ledger_blocked",
    "1 while the hub refuses the operator's own ledger (see smart ledger alarms), else 0.",
    registry=REGISTRY,
)

LEDGER_LAG = prometheus_client.Gauge(
    "smart_operator_ledger_lag_entries",
    "Entries of the operator's own ledger the hub has not yet receipted.",
    registry=REGISTRY,
)


def app(ready: Callable[[], bool]) -> web.Application:
    """``/metrics`` and ``/readyz``."""

    async def metrics(_: web.Request) -> web.Response:
        body = prometheus_client.generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if ready() else web.Response(status=503, text="starting\n")

    application = web.Application()
    application.router.add_get("/metrics", metrics)
    application.router.add_get("/readyz", readyz)
    return application


async def serve(host: str, port: int, ready: Callable[[], bool]) -> web.AppRunner:
    """Start the metrics and readiness server; the caller cleans the runner up."""
    runner = web.AppRunner(app(ready), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
