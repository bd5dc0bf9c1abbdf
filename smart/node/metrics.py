"""A station's Prometheus metrics: what it decided, how fast, and how far its ledger and mirrors lag.

Each station has its own registry (:class:`StationMetrics`, held by its node agent), never the
process's default one: a test, a bench or ``smart up`` with several stations in one process keeps
each station's figures apart. The station's web app (:mod:`smart.node.web`, the process of the
agent, its in-process modules and its kiosk) serves them on ``/metrics`` of the station's web
port, beside ``/healthz``: one scrape target per station, the port a Kubernetes admin already
has a Service for.

Counters and the latency histogram are moved where a decision is recorded; everything else is
read from the station's state at scrape time (ledger lag, mirror lag, the interlock, the count of
open NCRs its records keep), so a scrape never sees a stale copy. Label values are station ids,
module names, rule ids and outcomes only: never a badge, a person or a job (personal data stays
on the ledger).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
from prometheus_client import utils as exposition

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


#: The station's state figures as (name, type, help, how to read it from :class:`StationFigures`);
#: a reader giving ``None`` leaves its family out of the scrape (nothing rather than a wrong 0).
_STATE: tuple[tuple[str, str, str, Callable[[StationFigures], float | None]], ...] = (
    (
        "smart_station_ledger_entries",
        "gauge",
        "Entries in the station's node log.",
        lambda s: s.ledger_entries,
    ),
    (
        "smart_station_ledger_lag_entries",
        "gauge",
        "Entries of the station's ledger the hub has not yet receipted.",
        lambda s: s.ledger_lag,
    ),
    (
        "smart_station_ledger_shipped_entries",
        "counter",
        "Entries of the station's ledger the hub has receipted (rate() is the shipping rate).",
        lambda s: s.shipped_seq + 1,
    ),
    (
        "smart_station_ledger_blocked",
        "gauge",
        "1 while the hub refuses the station's ledger (an administrator decides its alarm), else 0.",
        lambda s: 1 if s.ledger_blocked else 0,
    ),
    ("smart_station_ledger_alarms", "gauge", "Ledger alarms open at the station.", lambda s: s.ledger_alarms),
    (
        "smart_station_mirror_lag_messages",
        "gauge",
        "Messages the station's mirrors of the hub's buckets are behind the hub, all together.",
        lambda s: s.mirror_lag,
    ),
    (
        "smart_station_contract_revisions",
        "gauge",
        "Verified contract revisions in force at the station (0: it refuses everything).",
        lambda s: s.revisions,
    ),
    (
        "smart_station_leaf_connected",
        "gauge",
        "1 while the agent is connected to the station's leaf.",
        lambda s: 1 if s.connected else 0,
    ),
    (
        "smart_station_interlock_energised",
        "gauge",
        "1 while the interlock relay is energised (the gate allowed the current job), else 0.",
        lambda s: None if s.interlock_energised is None else int(s.interlock_energised),
    ),
    ("smart_station_ncrs_open", "gauge", "NCRs open on the station's jobs.", lambda s: s.ncrs_open),
    ("smart_station_modules", "gauge", "Modules running in the station's process.", lambda s: s.modules),
    (
        "smart_kiosk_hub_online",
        "gauge",
        "1 while the station's kiosk reaches the hub, else 0.",
        lambda s: None if s.kiosk_hub_online is None else int(s.kiosk_hub_online),
    ),
)


@dataclass
class _StateFigures:
    """The station's state families, read from its figures at each scrape (never cached: a lag
    or an interlock shown late is a wrong one), written from prepared heads and sample prefixes."""

    station: str
    source: FigureSource | None = None
    extra: list[Callable[[StationFigures], StationFigures]] = field(default_factory=list)

    def __post_init__(self) -> None:
        labels = _label_text(["station"], [self.station])
        exposed = [
            (f"{name}_total" if kind == "counter" else name, kind, text) for name, kind, text, _ in _STATE
        ]
        self._families = [
            (f"# HELP {name} {text}\n# TYPE {name} {kind}\n{name}{labels} ", read)
            for (name, kind, text), (*_, read) in zip(exposed, _STATE, strict=True)
        ]

    def body(self) -> bytes:
        figures = self.source() if self.source is not None else None
        if figures is None:  # the agent is stopped, or starting: no figures rather than wrong ones
            return b""
        for more in self.extra:
            figures = more(figures)
        parts = []
        for prefix, read in self._families:
            value = read(figures)
            if value is not None:
                parts.append(f"{prefix}{_number(value)}\n")
        return "".join(parts).encode()


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
    """A labelled counter whose sample lines are formatted once per series, its text once per change.

    A busy station carries a few hundred (module, rule, outcome) series; prometheus-client's
    generic exposition spent ~15 µs on each per scrape, which put a station's ``/metrics`` over
    its 5 ms budget. Here each series' line prefix is prepared when the series is first seen, and
    the family's text is rendered once after a change and served as the same bytes to every scrape
    until the next one (scrapes far outnumber changes on a quiet station, and a scrape never waits
    on a render another scrape already did).
    """

    def __init__(self, name: str, text: str, labels: Sequence[str]) -> None:
        self.name = f"{name}_total"
        self.labels = tuple(labels)
        self.head = f"# HELP {self.name} {text}\n# TYPE {self.name} counter\n"
        self._series: dict[tuple[str, ...], list[Any]] = {}  # values -> [line prefix, count]
        self._rendered: bytes | None = None  # None: changed since the last render
        self._lock = threading.Lock()  # a count moved from another thread (a kiosk's worker) is kept

    def inc(self, *values: str, amount: float = 1.0) -> None:
        with self._lock:
            series = self._series.get(values)
            if series is None:
                series = self._series[values] = [f"{self.name}{_label_text(self.labels, values)} ", 0.0]
            series[1] += amount
            self._rendered = None

    def value(self, *values: str) -> float:
        series = self._series.get(values)
        return 0.0 if series is None else float(series[1])

    def body(self) -> bytes:
        """The family's exposition text, rendered again only if a count moved since the last call."""
        rendered = self._rendered
        if rendered is None:
            with self._lock:  # rendered and stored under the lock: an inc() after it clears it again
                lines = [f"{prefix}{_number(count)}\n" for prefix, count in self._series.values()]
                rendered = self._rendered = (self.head + "".join(lines)).encode()
        return rendered

    def text(self) -> str:
        return self.body().decode()


class _Histogram:
    """A histogram labelled by (station, module), prepared and cached like :class:`_Counter`'s."""

    def __init__(self, name: str, text: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name = name
        self.labels = tuple(labels)
        self.buckets = tuple(buckets)
        self.head = f"# HELP {name} {text}\n# TYPE {name} histogram\n"
        self._series: dict[tuple[str, ...], tuple[list[str], str, str, list[float]]] = {}
        self._rendered: bytes | None = None
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
            self._rendered = None

    def count(self, *values: str) -> float:
        """Observations of one series (0 if it has none)."""
        series = self._series.get(values)
        return 0.0 if series is None else float(sum(series[3][:-1]))

    def body(self) -> bytes:
        rendered = self._rendered
        if rendered is None:
            with self._lock:
                lines: list[str] = []
                for prefixes, count_prefix, sum_prefix, counts in self._series.values():
                    running = 0.0
                    for prefix, own in zip(prefixes, counts, strict=False):
                        running += own
                        lines.append(f"{prefix}{_number(running)}\n")
                    lines.append(f"{count_prefix}{_number(running)}\n")
                    lines.append(f"{sum_prefix}{_number(counts[-1])}\n")
                rendered = self._rendered = (self.head + "".join(lines)).encode()
        return rendered

    def text(self) -> str:
        return self.body().decode()


class StationMetrics:
    """One station's registry, its decision counters and latency histogram, and its state figures.

    Every family is rendered by this module (see :class:`_Counter`; a test holds its text to
    prometheus-client's): the decision families once per change, the state figures at each scrape.
    """

    def __init__(self, station: str) -> None:
        self.station = station
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
        self._state = _StateFigures(station)

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
        """The scrape: the decision families as rendered at their last change, the state read now."""
        return b"".join(
            (
                self.decisions.body(),
                self.reasons.body(),
                self.latency.body(),
                self.witness_rounds.body(),
                self._state.body(),
            )
        )


def _gauge(name: str, text: str, labels: str, value: float) -> str:
    return f"# HELP {name} {text}\n# TYPE {name} gauge\n{name}{labels} {_number(value)}\n"


class ModuleMetrics:
    """The figures of one module running as a process of its own (``smart module run``).

    In the station's process a module's decisions and latency are the station's
    (``smart_station_decision_seconds{module=...}``); a module in its own process is asked over the
    leaf, and only it knows how long it took. Its families are named ``smart_module_*`` so that a
    sum over a station's targets never counts a decision twice: the station's agent still counts
    each of them in ``smart_station_decisions_total`` as it records it (the agent is the node log's
    one writer), and this process counts what it decided and how long from the request it took
    until the agent said the decision was durable. Its connection state is read at scrape time.
    """

    def __init__(self, station: str, module: str) -> None:
        self.station = station
        self.module = module
        self.decisions = _Counter(
            "smart_module_decisions",
            "Decisions this module process took and had recorded, by deciding rule and outcome.",
            ["station", "module", "rule", "outcome"],
        )
        self.latency = _Histogram(
            "smart_module_decision_seconds",
            "From the module process taking a request to the agent's word that its decision is durable.",
            ["station", "module"],
            LATENCY_BUCKETS,
        )
        self.errors = _Counter(
            "smart_module_request_errors",
            "Requests answered with an error, no decision: unreadable, or not_recorded (the asker refuses).",
            ["station", "module", "kind"],
        )
        self._labels = _label_text(["station", "module"], [station, module])
        self.connected: Callable[[], bool] = lambda: False
        self.serving: Callable[[], bool] = lambda: False

    def decided(self, decision: Mapping[str, Any], seconds: float) -> None:
        """Count a decision the agent has recorded, and how long it took from its request."""
        outcome = str(decision.get("outcome", "unknown"))
        reasons = [r for r in decision.get("reasons") or () if isinstance(r, Mapping)]
        self.decisions.inc(self.station, self.module, deciding_rule(outcome, reasons), outcome)
        self.latency.observe(seconds, self.station, self.module)

    def refused(self, kind: str) -> None:
        """``unreadable`` or ``not_recorded``: answered with an error, nothing decided."""
        self.errors.inc(self.station, self.module, kind)

    def text(self) -> bytes:
        state = _gauge(
            "smart_module_leaf_connected",
            "1 while the module process is connected to its station's leaf.",
            self._labels,
            1 if self.connected() else 0,
        ) + _gauge(
            "smart_module_serving",
            "1 once the station's agent answered the module's ports and the module takes requests.",
            self._labels,
            1 if self.serving() else 0,
        )
        return b"".join((self.decisions.body(), self.latency.body(), self.errors.body(), state.encode()))


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
    #: The station's own render of its text, in its process (p95; None when timing a URL).
    render_p95_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "render_p95_ms": None if self.render_p95_ms is None else round(self.render_p95_ms, 4),
            "station_metrics_ms": round(self.metrics_p95_ms, 3),
            "station_metrics_p50_ms": round(self.metrics_p50_ms, 3),
            "baseline_p95_ms": round(self.baseline_p95_ms, 3),
            "baseline_p50_ms": round(self.baseline_p50_ms, 3),
            "scrapes": self.scrapes,
            "metrics_bytes": self.metrics_bytes,
        }


def render_p95_ms(metrics: StationMetrics, renders: int = 200) -> float:
    """p95 of ``renders`` renders of the station's ``/metrics`` text, in its own process."""
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        metrics.text()
        times.append((time.perf_counter() - started) * 1000)
    return _percentile(times, 95)


def _percentile(values: Sequence[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def measure_station_metrics_ms(
    base_url: str, *, scrapes: int = 200, baseline_path: str = "/metrics/baseline"
) -> ScrapeFigures:
    """Time to serve a running station's ``/metrics`` (p50/p95 over ``scrapes``) beside a baseline.

    The baseline is an empty route of the same server (:func:`smart.node.web.create_station_app`
    serves ``/metrics/baseline``, 204), scraped alternately with ``/metrics`` in the same run so
    both see the same machine: the difference is what rendering the station's figures costs. The
    scrapes come from a process of their own (:mod:`smart.node.metrics_scraper`), as Prometheus's
    do: a client on the station's own loop would be timed as part of the station.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smart.node.metrics_scraper",
        base_url,
        str(scrapes),
        baseline_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the scraper of {base_url} failed: {err.decode(errors='replace')[-2000:]}")
    timed = json.loads(out)
    metrics, baseline = timed["metrics_ms"], timed["baseline_ms"]
    return ScrapeFigures(
        scrapes=len(metrics),
        metrics_p50_ms=_percentile(metrics, 50),
        metrics_p95_ms=_percentile(metrics, 95),
        baseline_p50_ms=_percentile(baseline, 50),
        baseline_p95_ms=_percentile(baseline, 95),
        metrics_bytes=int(timed["metrics_bytes"]),
    )
