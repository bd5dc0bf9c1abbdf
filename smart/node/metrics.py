"""A station's Prometheus metrics: what it decided, how fast, and how far its ledger and mirrors lag.

Each station has its own registry (:class:`StationMetrics`, held by its node agent), never the
process's default one: a test, a bench or ``smart up`` with several stations in one process keeps
each station's figures apart. The station's web app (:mod:`smart.node.web`, the process of the
agent, its in-process modules and its kiosk) serves them on ``/metrics`` of the station's web
port, beside ``/healthz``: one scrape target per station, the port a Kubernetes admin already
has a Service for.

Counters and the latency histogram are moved where a decision is recorded; everything else is
read from the station's state at scrape time (ledger lag, mirror lag, the interlock, NCRs open),
so a scrape never sees a stale copy. Label values are station ids, module names, rule ids and
outcomes only: never a badge, a person or a job (personal data stays on the ledger).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import prometheus_client
from prometheus_client import utils as exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# No ``*_created`` series beside each counter and histogram: they double a station's scrape (one
# per series of every rule) and Prometheus reads nothing from them. Process-wide, as the library has it.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

#: The ledger entry kinds that are decisions (the station's own and a module's).
DECISION_KINDS = ("gate.decision", "module.decision")
#: The ``module`` label of a decision the station took by every active contract, not by one module.
STATION_MODULE = "station"
#: The ``rule`` label of a decision no rule spoke to (an allow with no reasons).
NO_RULE = "none"
#: Decision latency buckets: a gate decision is well under a millisecond; a module's, with its
#: ledger append, a few; a module in a process of its own asked over the leaf, tens.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class StationFigures:
    """What the station's state says at scrape time (``None``: it cannot say now)."""

    ledger_entries: int
    shipped_seq: int
    ledger_blocked: bool
    ledger_alarms: int
    mirror_lag: int | None
    revisions: int
    connected: bool
    interlock_energised: bool | None = None
    ncrs_open: int | None = None
    modules: int | None = None
    kiosk_hub_online: bool | None = None

    @property
    def ledger_lag(self) -> int:
        """Entries the hub has not yet receipted (the shipped cursor is the hub's word)."""
        return max(self.ledger_entries - 1 - self.shipped_seq, 0)


FigureSource = Callable[[], StationFigures | None]


@dataclass(eq=False)  # a registry keys its collectors by identity
class _StateCollector(Collector):
    station: str
    source: FigureSource | None = None
    extra: list[Callable[[StationFigures], StationFigures]] = field(default_factory=list)

    def collect(self) -> Iterator[Metric]:
        figures = self.source() if self.source is not None else None
        if figures is None:  # the agent is stopped, or starting: no figures rather than wrong ones
            return
        for more in self.extra:
            figures = more(figures)
        station = [self.station]

        def gauge(name: str, text: str, value: float | None) -> Iterator[Metric]:
            if value is None:
                return
            family = GaugeMetricFamily(name, text, labels=["station"])
            family.add_metric(station, value)
            yield family

        yield from gauge(
            "smart_station_ledger_entries", "Entries in the station's node log.", figures.ledger_entries
        )
        yield from gauge(
            "smart_station_ledger_lag_entries",
            "Entries of the station's ledger the hub has not yet receipted.",
            figures.ledger_lag,
        )
        shipped = CounterMetricFamily(
            "smart_station_ledger_shipped_entries",
            "Entries of the station's ledger the hub has receipted (rate() is the shipping rate).",
            labels=["station"],
        )
        shipped.add_metric(station, figures.shipped_seq + 1)
        yield shipped
        yield from gauge(
            "smart_station_ledger_blocked",
            "1 while the hub refuses the station's ledger (an administrator decides its alarm), else 0.",
            1 if figures.ledger_blocked else 0,
        )
        yield from gauge(
            "smart_station_ledger_alarms", "Ledger alarms open at the station.", figures.ledger_alarms
        )
        yield from gauge(
            "smart_station_mirror_lag_messages",
            "Messages the station's mirrors of the hub's buckets are behind the hub, all together.",
            figures.mirror_lag,
        )
        yield from gauge(
            "smart_station_contract_revisions",
            "Verified contract revisions in force at the station (0: it refuses everything).",
            figures.revisions,
        )
        yield from gauge(
            "smart_station_leaf_connected",
            "1 while the agent is connected to the station's leaf.",
            1 if figures.connected else 0,
        )
        yield from gauge(
            "smart_station_interlock_energised",
            "1 while the interlock relay is energised (the gate allowed the current job), else 0.",
            None if figures.interlock_energised is None else int(figures.interlock_energised),
        )
        yield from gauge("smart_station_ncrs_open", "NCRs open on the station's jobs.", figures.ncrs_open)
        yield from gauge(
            "smart_station_modules", "Modules running in the station's process.", figures.modules
        )
        yield from gauge(
            "smart_kiosk_hub_online",
            "1 while the station's kiosk reaches the hub, else 0.",
            None if figures.kiosk_hub_online is None else int(figures.kiosk_hub_online),
        )


def _number(value: float) -> str:
    """A sample value as the text format writes it (``1.0``, ``+Inf``), prometheus-client's own way."""
    text: str = exposition.floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """``{a="x",b="y"}`` with the text format's escapes (backslash, quote, newline)."""
    pairs = []
    for name, value in zip(names, values, strict=True):
        escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        pairs.append(f'{name}="{escaped}"')
    return "{" + ",".join(pairs) + "}"


class _Counter:
    """A labelled counter whose sample lines are formatted once per series, not once per scrape.

    A busy station carries a few hundred (module, rule, outcome) series; prometheus-client's
    generic exposition spent ~15 µs on each per scrape, which put a station's ``/metrics`` over
    its 5 ms budget. Here a scrape is one join of prepared prefixes and current values.
    """

    def __init__(self, name: str, text: str, labels: Sequence[str]) -> None:
        self.name = f"{name}_total"
        self.labels = tuple(labels)
        self.head = f"# HELP {self.name} {text}\n# TYPE {self.name} counter\n"
        self._series: dict[tuple[str, ...], list[Any]] = {}  # values -> [line prefix, count]
        self._lock = threading.Lock()

    def inc(self, *values: str, amount: float = 1.0) -> None:
        with self._lock:
            series = self._series.get(values)
            if series is None:
                series = self._series[values] = [f"{self.name}{_label_text(self.labels, values)} ", 0.0]
            series[1] += amount

    def value(self, *values: str) -> float:
        series = self._series.get(values)
        return 0.0 if series is None else float(series[1])

    def text(self) -> str:
        with self._lock:
            lines = [f"{prefix}{_number(count)}\n" for prefix, count in self._series.values()]
        return self.head + "".join(lines)


class _Histogram:
    """A histogram labelled by (station, module), its bucket lines prepared like :class:`_Counter`'s."""

    def __init__(self, name: str, text: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name = name
        self.labels = tuple(labels)
        self.buckets = tuple(buckets)
        self.head = f"# HELP {name} {text}\n# TYPE {name} histogram\n"
        self._series: dict[tuple[str, ...], tuple[list[str], str, str, list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, seconds: float, *values: str) -> None:
        with self._lock:
            series = self._series.get(values)
            if series is None:
                inner = _label_text(self.labels, values)[1:-1]
                prefixes = [
                    f'{self.name}_bucket{{{inner},le="{_number(bound)}"}} '
                    for bound in (*self.buckets, math.inf)
                ]
                counts = [0.0] * (len(self.buckets) + 2)  # each bucket's own, +Inf's, then the sum
                series = (prefixes, f"{self.name}_count{{{inner}}} ", f"{self.name}_sum{{{inner}}} ", counts)
                self._series[values] = series
            counts = series[3]
            counts[bisect.bisect_left(self.buckets, seconds)] += 1
            counts[-1] += seconds

    def text(self) -> str:
        lines: list[str] = []
        with self._lock:
            for prefixes, count_prefix, sum_prefix, counts in self._series.values():
                running = 0.0
                for prefix, own in zip(prefixes, counts, strict=False):
                    running += own
                    lines.append(f"{prefix}{_number(running)}\n")
                lines.append(f"{count_prefix}{_number(running)}\n")
                lines.append(f"{sum_prefix}{_number(counts[-1])}\n")
        return self.head + "".join(lines)


class StationMetrics:
    """One station's registry, its decision counters and latency histogram, and its state figures.

    The decision counters and the histogram are rendered by this module (see :class:`_Counter`);
    the state figures by prometheus-client from the station's own registry, read at scrape time.
    """

    def __init__(self, station: str) -> None:
        self.station = station
        self.registry = prometheus_client.CollectorRegistry()
        self.decisions = _Counter(
            "smart_station_decisions",
            "Decisions recorded at the station, by module, deciding rule and outcome.",
            ["station", "module", "rule", "outcome"],
        )
        self.reasons = _Counter(
            "smart_station_decision_reasons",
            "Reasons given in the station's decisions, by module, rule and severity.",
            ["station", "module", "rule", "severity"],
        )
        self.latency = _Histogram(
            "smart_station_decision_seconds",
            "From a decision request to its decision durable on the station's ledger, by module.",
            ["station", "module"],
            LATENCY_BUCKETS,
        )
        self.witness_rounds = _Counter(
            "smart_station_witness_rounds",
            "The hub's checkpoints this station was asked to witness, by outcome.",
            ["station", "outcome"],
        )
        self._state = _StateCollector(station)
        self.registry.register(self._state)

    def read_state(self, source: FigureSource) -> None:
        """Where the scrape reads the station's figures (the agent's status)."""
        self._state.source = source

    def add_state(self, more: Callable[[StationFigures], StationFigures]) -> None:
        """Figures another part of the process adds (the runtime's interlock and NCRs, the kiosk's)."""
        self._state.extra.append(more)

    def decided(self, kind: str, data: Mapping[str, Any]) -> None:
        """Count a decision entry as it is recorded (``gate.decision`` or ``module.decision``)."""
        if kind not in DECISION_KINDS:
            return
        outcome = str(data.get("outcome", "unknown"))
        module = str(data.get("module") or STATION_MODULE)
        reasons = [r for r in data.get("reasons") or () if isinstance(r, Mapping)]
        self.decisions.inc(self.station, module, deciding_rule(outcome, reasons), outcome)
        for reason in reasons:
            severity = str(reason.get("severity", "deny"))
            self.reasons.inc(self.station, module, str(reason.get("rule", NO_RULE)), severity)

    def observe(self, module: str, seconds: float) -> None:
        self.latency.observe(seconds, self.station, module)

    def witnessed(self, outcome: str) -> None:
        """``cosigned``, ``seen`` (already cosigned that size) or ``refused``."""
        self.witness_rounds.inc(self.station, outcome)

    def text(self) -> bytes:
        own = self.decisions.text() + self.reasons.text() + self.latency.text() + self.witness_rounds.text()
        return own.encode() + prometheus_client.generate_latest(self.registry)


def deciding_rule(outcome: str, reasons: Sequence[Mapping[str, Any]]) -> str:
    """The rule a decision turned on: its first reason of the outcome's severity, else its first."""
    if not reasons:
        return NO_RULE
    for reason in reasons:
        if reason.get("severity", "deny") == outcome:
            return str(reason.get("rule", NO_RULE))
    return str(reasons[0].get("rule", NO_RULE))


# -- how long a station takes to serve /metrics ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrapeFigures:
    """``/metrics`` of one station served N times, beside an empty route of the same server."""

    scrapes: int
    metrics_p50_ms: float
    metrics_p95_ms: float
    baseline_p50_ms: float
    baseline_p95_ms: float
    metrics_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "station_metrics_ms": round(self.metrics_p95_ms, 3),
            "station_metrics_p50_ms": round(self.metrics_p50_ms, 3),
            "baseline_p95_ms": round(self.baseline_p95_ms, 3),
            "baseline_p50_ms": round(self.baseline_p50_ms, 3),
            "scrapes": self.scrapes,
            "metrics_bytes": self.metrics_bytes,
        }


def _percentile(values: Sequence[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def scrape_times_ms(base_url: str, *, scrapes: int, path: str) -> tuple[list[float], int]:
    """Milliseconds of each GET of ``path`` (one kept-alive connection, as Prometheus scrapes)."""
    times: list[float] = []
    size = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        await client.get(path)  # warm: the connection and the first render
        for _ in range(scrapes):
            started = time.perf_counter()
            response = await client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            size = len(response.content)
    return times, size


async def measure_station_metrics_ms(
    base_url: str, *, scrapes: int = 200, baseline_path: str = "/metrics/baseline"
) -> ScrapeFigures:
    """Time to serve a running station's ``/metrics`` (p50/p95 over ``scrapes``) beside a baseline.

    The baseline is an empty route of the same server (:func:`smart.node.web.create_station_app`
    serves ``/metrics/baseline``, 204), scraped alternately with ``/metrics`` in the same run so
    both see the same machine: the difference is what rendering the station's figures costs.
    """
    metrics: list[float] = []
    baseline: list[float] = []
    size = 0
    while len(metrics) < scrapes:  # alternating chunks: both see the same moments of the machine
        chunk = min(20, scrapes - len(metrics))
        times, size = await scrape_times_ms(base_url, scrapes=chunk, path="/metrics")
        metrics += times
        empty, _ = await scrape_times_ms(base_url, scrapes=chunk, path=baseline_path)
        baseline += empty
        await asyncio.sleep(0)
    return ScrapeFigures(
        scrapes=len(metrics),
        metrics_p50_ms=_percentile(metrics, 50),
        metrics_p95_ms=_percentile(metrics, 95),
        baseline_p50_ms=_percentile(baseline, 50),
        baseline_p95_ms=_percentile(baseline, 95),
        metrics_bytes=size,
    )
