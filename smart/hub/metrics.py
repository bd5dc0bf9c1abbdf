"""The hub's ledger intake in Prometheus figures: entries ingested, batches refused, alarms, witnesses.

The intake runs in the hub's Floor process, so its figures are served by that process's web app
on ``/metrics`` (:func:`smart.hub.web.app.create_app`), beside the services' health. Each intake
has its own registry, never the process's default one, so two hubs in one test process keep
their counts apart. Labels are station ids, refusal kinds and outcomes: no personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import prometheus_client

#: What a witness round's outcome is counted as (the intake's own words carry the reason after).
WITNESS_OUTCOMES = ("cosigned", "refused", "unreachable", "bad cosignature", "no checkpoint")


def witness_outcome(outcome: str) -> str:
    """``refused: the station cosigned …`` → ``refused``; the reason stays in the log and alarm."""
    for known in WITNESS_OUTCOMES:
        if outcome.startswith(known):
            return known.replace(" ", "_")
    return "other"


class IntakeMetrics:
    """One intake's registry and figures; :meth:`text` is what ``/metrics`` appends."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.entries = prometheus_client.Counter(
            "smart_hub_ledger_entries_ingested",
            "Station ledger entries taken into the hub's global log, by station (new ones only).",
            ["station"],
            registry=self.registry,
        )
        self.batches = prometheus_client.Counter(
            "smart_hub_ledger_batches_ingested",
            "Batches of station ledgers committed by the intake, by station.",
            ["station"],
            registry=self.registry,
        )
        self.refusals = prometheus_client.Counter(
            "smart_hub_ledger_ingest_refusals",
            "Batches the intake refused, by station and kind (refused, fork, blocked, gap).",
            ["station", "kind"],
            registry=self.registry,
        )
        self.alarms_raised = prometheus_client.Counter(
            "smart_hub_ledger_alarms_raised",
            "Ledger alarms the intake raised, by kind (refused, witness).",
            ["kind"],
            registry=self.registry,
        )
        self.alarms_open = prometheus_client.Gauge(
            "smart_hub_ledger_alarms_open",
            "Ledger alarms no administrator has decided yet (read at scrape time).",
            registry=self.registry,
        )
        self.blocked = prometheus_client.Gauge(
            "smart_hub_ledger_blocked",
            "1 while the hub refuses the station's ledger (its last receipt was a refusal), else 0.",
            ["station"],
            registry=self.registry,
        )
        self.witness_rounds = prometheus_client.Counter(
            "smart_hub_witness_rounds",
            "Checkpoints the hub asked a station to witness, by station and outcome.",
            ["station", "outcome"],
            registry=self.registry,
        )
        self.checkpoint_size = prometheus_client.Gauge(
            "smart_hub_ledger_checkpoint_size",
            "Entries under the hub's latest witnessed checkpoint.",
            registry=self.registry,
        )

    def text(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


def ncrs_open_text(stations: Sequence[str], open_by_station: Mapping[str, int]) -> bytes:
    """``smart_hub_ncrs_open{station}`` as QACentral holds them now (every station, 0 when none)."""
    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge(
        "smart_hub_ncrs_open", "NCRs open at QACentral, by station.", ["station"], registry=registry
    )
    for station in sorted({*stations, *open_by_station}):
        gauge.labels(station).set(open_by_station.get(station, 0))
    return prometheus_client.generate_latest(registry)
