"""``smart bench audit``: a job's audit packet, a reverse search and the client's offline check on a big log.

The log is built the fast way that is still the real one: every entry goes
through ``HubLog.ingest`` (chains, signed heads, Merkle tree, checkpoints,
COPY), but most are made-up gate decisions formatted in bulk
(:func:`smart.ledger.synthetic.fast_chain`) on four filler stations, and the
jobs are written as pt-1 and sr-1 write them (records received, daily
checks, the gate's decisions, each step, release, hand-off, receipt and
shipment), one job after another, with one gauge (``UV-METER-1``) in all of
them. The audit index is then filled from the same :func:`refs_of` the hub
uses, by COPY. Figures, each beside a baseline of the same run:

- ``packet_html_s``: the packet of one job (the follower asked for new entries, nine
  sections, one proof per cited entry, HTML) — beside a plain SELECT of the
  same cited entries (``baseline_select_s``);
- ``packet_pdf_s``: WeasyPrint of that HTML — beside a one-page document
  (``baseline_pdf_s``);
- ``impact_s``: every job the gauge touched since a date — beside a bare
  count of its index rows (``baseline_impact_s``);
- ``offline_verify_ms``: the client's page checking the shipment's bundle in
  headless Chromium (median of 20) — beside ``smart verify``'s check of the
  same bundle in Python (``baseline_verify_ms``).

The machine is shared, so each timed figure (and its baseline) is the median of
``rounds`` runs, and ``load_average`` says how busy the machine was meanwhile.
"""

from __future__ import annotations

import itertools
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
from psycopg import sql

from smart.hub.audit import clientproof, index, render
from smart.hub.audit.service import AuditCentral, Rendered
from smart.keys import KeyStore, SigningKey
from smart.ledger import bundle, hub_store, synthetic, trust
from smart.ledger.batch import Batch
from smart.ledger.entry import GENESIS, Entry
from smart.ledger.head import SignedHead
from smart.ledger.witness import Witness

T = TypeVar("T")
FILLERS = ("mt-1", "ut-1", "ht-1", "cp-1")
START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
STEPS = ("pre-clean", "penetrant-apply", "penetrant-dwell", "wash", "dry", "developer", "inspect")


@dataclass(frozen=True, slots=True)
class Figures:
    packet_html_s: float
    baseline_select_s: float
    packet_pdf_s: float
    baseline_pdf_s: float
    impact_s: float
    baseline_impact_s: float
    impact_jobs: int
    offline_verify_ms: float | None
    baseline_verify_ms: float
    ledger_entries: int
    jobs: int
    cited_entries: int
    build_s: float
    #: Each timed figure is the median of this many rounds (the offline check: of 20).
    rounds: int
    #: The machine's 1-minute load average while timing (lowest, highest): the figures' context.
    load_average: tuple[float, float]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class _Chain:
    """One node's chain, cut into batches closed by signed heads, as the node ships it."""

    def __init__(self, node: str, key: SigningKey, batch_size: int) -> None:
        self.node, self.key, self.batch_size = node, key, batch_size
        self.seq, self.prev = 0, GENESIS
        self.pending: list[Entry] = []
        self.ready: list[Batch] = []

    def add(self, kind: str, subject: str, data: dict[str, Any], actor: str, ts: datetime) -> None:
        entry = Entry.create(
            node=self.node,
            node_seq=self.seq,
            prev=self.prev,
            kind=kind,
            subject=subject,
            data=data,
            actor=actor,
            contract="penetrant@3f1c9a0e5b7d2c4a" if self.node == "pt-1" else "shipping-receiving@9d2e",
            ts=ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
        self.seq, self.prev = self.seq + 1, entry.hash
        self.pending.append(entry)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            last = self.pending[-1]
            head = SignedHead.sign(self.key, node=self.node, node_seq=last.node_seq, entry_hash=last.hash)
            self.ready.append(Batch(node=self.node, entries=tuple(self.pending), head=head))
            self.pending = []

    def take(self) -> list[Batch]:
        out, self.ready = self.ready, []
        return out


def _record(chain: _Chain, kind: str, record_id: str, value: dict[str, Any], ts: datetime) -> None:
    data = {"deleted": False, "id": record_id, "kind": kind, "revision": chain.seq + 1, "value": value}
    chain.add("record.received", f"{kind}/{record_id}", data, chain.node, ts)


def _person(badge: str, day: datetime) -> dict[str, Any]:
    return {
        "authorities": [],
        "certifications": [
            {
                "basis": "initial-exam",
                "expires": (day + timedelta(days=700)).isoformat(),
                "instructor": False,
                "issued": (day - timedelta(days=1000)).isoformat(),
                "level": "level-2",
                "method": "PT",
                "practical_samples": 3,
                "practical_samples_per_technique": {},
                "revoked": False,
                "revoked_at": None,
                "technique": None,
                "techniques": [],
            }
        ],
        "exams": [
            {
                "exam": "near-vision",
                "passed": True,
                "taken": (day - timedelta(days=120)).isoformat(),
                "test": "jaeger-1-12in",
            }
        ],
        "id": badge,
        "last_performed": {"PT": (day - timedelta(days=7)).isoformat()},
        "performed": {},
    }


def _jobs(pt: _Chain, sr: _Chain, jobs: int) -> Iterator[list[Batch]]:
    """``jobs`` penetrant jobs walked pt-1 then sr-1, one a quarter-hour apart; batches as they fill."""
    for n in range(jobs):
        at = START + timedelta(minutes=15 * n)
        job, po, serial = f"J-{n + 1}", f"PO-{5000 + n // 4}", f"SN-{n:06d}"
        badge = f"op-{n % 5}"
        if n % 40 == 0:  # the shop's records reach the station now and then
            for b in range(5):
                _record(pt, "person", f"op-{b}", _person(f"op-{b}", at), at)
            _record(
                pt,
                "equipment",
                "UV-METER-1",
                {
                    "attributes": {},
                    "calibration": {"at": (at - timedelta(days=30)).isoformat(), "in_tolerance": True},
                    "calibrations": [],
                    "id": "UV-METER-1",
                    "kind": "light-meter",
                    "maintained_at": None,
                    "maintenances": [],
                    "qualified_max": None,
                    "qualified_min": None,
                    "qualified_ranges": [],
                    "survey_records": [],
                    "surveys": {},
                    "usage_limits": [],
                },
                at,
            )
            _record(
                pt,
                "lot",
                "PEN-2291",
                {
                    "expires": (at + timedelta(days=200)).isoformat(),
                    "form": "bulk",
                    "id": "PEN-2291",
                    "material": "penetrant",
                    "on_hand": None,
                    "opened": None,
                    "unit": None,
                },
                at,
            )
            _record(
                pt,
                "procedure",
                "PT-PROC-12",
                {
                    "approved_by": "l3-1",
                    "id": "PT-PROC-12",
                    "method": "PT",
                    "revision": "D",
                    "validated": True,
                },
                at,
            )
            _record(
                sr,
                "person",
                "qm-1",
                {
                    "authorities": ["coc-signature"],
                    "certifications": [],
                    "exams": [],
                    "id": "qm-1",
                    "last_performed": {},
                    "performed": {},
                },
                at,
            )
        if n % 20 == 0:
            check = {
                "at": at.isoformat(),
                "check": "uv-a-intensity",
                "equipment": "UV-METER-1",
                "passed": True,
                "readings": {"uv-a-intensity": {"unit": "µW/cm²", "value": 1180}},
            }
            pt.add("record.check", "uv-a-intensity", {"kind": "check", "value": check}, badge, at)
        scan = {"line": "1", "operation": None, "part": "BRK-220", "po": po, "serial": serial}
        event = {
            "action": "operate",
            "at": at.isoformat(),
            "attributes": {},
            "equipment": ["UV-METER-1", f"TAM-{n % 3}"],
            "job": job,
            "lots": ["PEN-2291"],
            "person": badge,
            "ppe": [],
            "procedure": "PT-PROC-12",
            "procedure_revision": "D",
            "readings": {},
            "scan": scan,
            "station": "pt-1",
            "step": None,
            "supervisor": None,
        }
        sr_event = {
            **event,
            "equipment": [],
            "lots": [],
            "procedure": None,
            "procedure_revision": None,
            "station": "sr-1",
            "job": f"R-{n + 1}",
            "person": "qm-1",
        }
        sr.add(
            "module.decision",
            f"R-{n + 1}",
            {
                "event": {**sr_event, "action": "receive"},
                "module": "gatekeeper",
                "outcome": "allow",
                "reasons": [],
                "verb": "start",
                "effects": {},
            },
            "qm-1",
            at,
        )
        sr.add(
            "job.transition",
            f"R-{n + 1}",
            {
                "allowed": True,
                "at": at.isoformat(),
                "decisions": [],
                "from": "badged-in",
                "outcome": "allow",
                "reasons": [],
                "to": "received",
                "verb": "receive",
            },
            "qm-1",
            at,
        )
        record: dict[str, Any] = {
            "coc_signed_by": None,
            "id": job,
            "line": "1",
            "measurements": {},
            "ncrs": [],
            "part": "BRK-220",
            "po": po,
            "quantities": {},
            "serials": [serial],
            "signed_by": None,
            "step_measurements": {},
            "steps": [],
        }
        for module in ("gatekeeper", "maintenance", "safety", "standards", "inventory", "qa"):
            pt.add(
                "module.decision",
                job,
                {
                    "event": event,
                    "module": module,
                    "outcome": "allow",
                    "reasons": [],
                    "verb": "start",
                    "effects": {},
                },
                badge,
                at,
            )
        pt.add(
            "job.transition",
            job,
            {
                "allowed": True,
                "at": at.isoformat(),
                "decisions": [],
                "from": "traveler-scanned",
                "outcome": "allow",
                "reasons": [],
                "to": "gated",
                "verb": "start",
            },
            badge,
            at,
        )
        for s, step in enumerate(STEPS):
            when = at + timedelta(minutes=s + 1)
            step_event = {**event, "action": "step", "at": when.isoformat(), "step": step}
            pt.add(
                "module.decision",
                job,
                {
                    "event": step_event,
                    "module": "qa",
                    "outcome": "allow",
                    "reasons": [],
                    "verb": "step",
                    "effects": {},
                },
                badge,
                when,
            )
            record = {**record, "steps": [*record["steps"], step]}
            pt.add("record.job", job, {"kind": "job", "value": record}, badge, when)
            pt.add(
                "job.transition",
                job,
                {
                    "allowed": True,
                    "at": when.isoformat(),
                    "decisions": [],
                    "from": "in-process",
                    "outcome": "allow",
                    "reasons": [],
                    "to": "in-process",
                    "verb": "step",
                },
                badge,
                when,
            )
        done = at + timedelta(minutes=9)
        record = {**record, "signed_by": badge}
        pt.add("record.job", job, {"kind": "job", "value": record}, badge, done)
        pt.add(
            "job.transition",
            job,
            {
                "allowed": True,
                "at": done.isoformat(),
                "decisions": [],
                "from": "in-process",
                "outcome": "allow",
                "reasons": [],
                "to": "released",
                "verb": "release",
            },
            badge,
            done,
        )
        pt.add("job.handoff", job, {"job": job, "record": record, "station": "pt-1"}, badge, done)
        shipped = at + timedelta(minutes=12)
        ship_event = {**sr_event, "action": "ship", "at": shipped.isoformat()}
        sr.add(
            "record.job",
            f"R-{n + 1}",
            {
                "kind": "job",
                "value": {
                    **record,
                    "id": f"R-{n + 1}",
                    "coc_signed_by": "qm-1",
                    "quantities": {"accepted": 1, "received": 1},
                },
            },
            "qm-1",
            shipped,
        )
        sr.add(
            "module.decision",
            f"R-{n + 1}",
            {
                "event": ship_event,
                "module": "logistics",
                "outcome": "allow",
                "reasons": [],
                "verb": "ship",
                "effects": {"quantities": {"accepted": 1, "received": 1}},
            },
            "qm-1",
            shipped,
        )
        sr.add(
            "job.transition",
            f"R-{n + 1}",
            {
                "allowed": True,
                "at": shipped.isoformat(),
                "decisions": [],
                "from": "received",
                "outcome": "allow",
                "reasons": [],
                "to": "shipped",
                "verb": "ship",
            },
            "qm-1",
            shipped,
        )
        yield pt.take() + sr.take()
    pt.flush()
    sr.flush()
    yield pt.take() + sr.take()


def build(url: str, keys: KeyStore, *, entries: int, jobs: int, batch_size: int = 5000) -> int:
    """Ingest the jobs and the filler through the real path, then fill the audit index by COPY."""
    hub = hub_store.HubLog.connect(
        url, key=keys.signing_key(hub_store.HUB_KEY), admin=keys.signing_key(trust.ADMIN_KEY)
    )
    for node in ("pt-1", "sr-1", *FILLERS):
        hub.register_node(node, keys.signing_key(node).verifying)
    for station in ("pt-1", "sr-1"):
        hub.register_witness(keys.signing_key(f"witness-{station}").verifying)
    pt, sr = (_Chain(n, keys.signing_key(n), batch_size) for n in ("pt-1", "sr-1"))
    job_batches = list(itertools.chain.from_iterable(_jobs(pt, sr, jobs)))
    filler = max(0, entries - sum(len(b.entries) for b in job_batches))  # the log is exactly ``entries`` long
    counts = [filler // len(FILLERS) + (1 if i < filler % len(FILLERS) else 0) for i in range(len(FILLERS))]
    fillers = [
        synthetic.fast_chain(n, keys.signing_key(n), c, batch_size=batch_size)
        for n, c in zip(FILLERS, counts, strict=True)
        if c > 0
    ]
    with hub:
        for round_ in itertools.zip_longest(job_batches, *fillers):
            hub.ingest_many([b for b in round_ if b is not None])
        for station in ("pt-1", "sr-1"):  # the stations cosign the latest checkpoint, as they do on a floor
            signer = keys.signing_key(f"witness-{station}")
            hub.witness(Witness(signer, log_key=keys.verifying_key("hub"), origin=hub.origin))
        size = hub.size()
    _index_by_copy(url, size)
    return size


def _index_by_copy(url: str, size: int) -> None:
    """The audit index's rows for the whole log, from :func:`index.refs_of`, written with COPY."""
    marks = [f'"kind":"{k}"'.encode() for k in index.KINDS]
    with (
        psycopg.connect(index.schema_url(url), autocommit=True) as conn,
        psycopg.connect(url, autocommit=True) as reader,  # the writer's connection is busy with COPY
        conn.cursor() as cur,
    ):
        with cur.copy(
            "COPY refs (ledger_idx, node, node_seq, kind, ref, job, at, method) FROM STDIN"
        ) as copy:
            for start in range(0, size, 50_000):
                rows = reader.execute(
                    "SELECT idx, entry FROM ledger_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
                    (start, start + 50_000),
                ).fetchall()
                for idx, raw in rows:
                    raw = bytes(raw)
                    if not any(m in raw for m in marks):
                        continue
                    entry = Entry.from_bytes(raw, canonical=False)
                    seen: set[str] = set()
                    for ref, job, at, run in index.refs_of(entry):
                        if ref in seen:
                            continue
                        seen.add(ref)
                        method = "PT" if run is not None and entry.node == "pt-1" else None
                        if ref.startswith("record/procedure/"):
                            method = "PT"
                        copy.write_row((idx, entry.node, entry.node_seq, entry.kind, ref, job, at, method))
        conn.execute("ANALYZE refs")


def _offline_ms(page_html: str, raw: bytes, work: Path, *, rounds: int = 20) -> float | None:
    try:
        from playwright.sync_api import sync_playwright

        from smart.testing.browser import CHROMIUM_FLAGS, chromium_path
    except ImportError:
        return None
    path = work / "verify-shipment.html"
    path.write_text(page_html, encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page()
            page.goto(path.resolve().as_uri())
            times = page.evaluate(
                """async ([text, rounds]) => { const out = [];
                   for (let i = 0; i < rounds; i++) {
                     const t = performance.now(); await window.smartVerify(text, "");  // throws if refused
                     out.push(performance.now() - t);
                   } return out; }""",
                [raw.decode(), rounds],
            )
        finally:
            browser.close()
    return float(statistics.median(times))


def _median_s(step: Callable[[], T], rounds: int) -> tuple[float, T]:
    """The median wall time of ``rounds`` runs of ``step`` (the machine is shared), and its last result."""
    times: list[float] = []
    for _ in range(max(1, rounds)):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run(
    admin_url: str, *, entries: int, jobs: int, progress: Callable[[str], None], rounds: int = 3
) -> Figures:
    name = f"bench_audit_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    try:
        with tempfile.TemporaryDirectory(prefix="smart-bench-audit-") as tmp:
            keys = KeyStore(Path(tmp) / "keys")
            hub_store.migrate(url)
            index.migrate(url)
            progress(f"building a log of {entries:,} entries with {jobs:,} walked jobs …")
            started = time.perf_counter()
            size = build(url, keys, entries=entries, jobs=jobs)
            build_s = time.perf_counter() - started
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            target = f"J-{jobs // 2 + 1}"
            central = AuditCentral(
                url, log_key=keys.verifying_key("hub"), admin=keys.verifying_key(trust.ADMIN_KEY)
            )
            try:
                central.refresh()  # the follower is current, as a running hub's is
                # WeasyPrint's first document in a process sets up its fonts and C types (~0.5 s of
                # CPU); a running hub has printed before, so one page is printed first, untimed
                render.pdf("<h1>Baseline</h1><p>one page</p>")
                loads = [os.getloadavg()[0]]
                progress(f"the packet of {target} ({rounds} rounds, the median kept) …")

                def packet_html() -> Rendered:
                    return central.rendered(central.packet(job=target))

                packet_html_s, done = _median_s(packet_html, rounds)
                made = done.packet
                baseline_select_s, _ = _median_s(
                    lambda: central.conn.execute(
                        "SELECT entry FROM public.ledger_entries WHERE idx = ANY(%s)", (list(made.cited),)
                    ).fetchall(),
                    rounds,
                )
                progress("its PDF …")
                packet_pdf_s, _ = _median_s(lambda: render.pdf(done.html, appendix=done.appendix), rounds)
                baseline_pdf_s, _ = _median_s(lambda: render.pdf("<h1>Baseline</h1><p>one page</p>"), rounds)
                loads.append(os.getloadavg()[0])
                progress("reverse search from UV-METER-1 …")
                since = START + timedelta(minutes=15 * (jobs // 2))  # the later half of the jobs
                impact_s, touched = _median_s(
                    lambda: central.impact("equipment/UV-METER-1", since=since), rounds
                )
                baseline_impact_s, _ = _median_s(
                    lambda: central.conn.execute(
                        "SELECT count(*) FROM audit.refs WHERE ref = %s AND at >= %s",
                        ("equipment/UV-METER-1", since),
                    ).fetchone(),
                    rounds,
                )
                proof = central.client_proof(made)
                trusted = central.trust()
            finally:
                central.close()
            started = time.perf_counter()
            for _ in range(20):
                bundle.verify(proof.bundle, trusted, min_witnesses=2)
            baseline_verify_ms = (time.perf_counter() - started) / 20 * 1000
            progress("the client's offline page in Chromium …")
            page = clientproof.verify_page(trusted, shop="bench", min_witnesses=2)
            offline = _offline_ms(page, proof.bundle, Path(tmp))
            loads.append(os.getloadavg()[0])
    finally:
        drop()
    return Figures(
        packet_html_s=round(packet_html_s, 3),
        baseline_select_s=round(baseline_select_s, 4),
        packet_pdf_s=round(packet_pdf_s, 3),
        baseline_pdf_s=round(baseline_pdf_s, 3),
        impact_s=round(impact_s, 4),
        baseline_impact_s=round(baseline_impact_s, 4),
        impact_jobs=len(touched),
        offline_verify_ms=None if offline is None else round(offline, 2),
        baseline_verify_ms=round(baseline_verify_ms, 3),
        ledger_entries=size,
        jobs=jobs,
        cited_entries=len(made.cited),
        build_s=round(build_s, 1),
        rounds=rounds,
        load_average=(round(min(loads), 1), round(max(loads), 1)),
    )


def run_on_temporary_floor(progress: Callable[[str], None], *, entries: int, jobs: int) -> Figures:
    """Start a temporary PostgreSQL (no NATS: the audit reads the log only) and run."""
    from smart.runtime.background import temporary_floor

    with temporary_floor(progress, prefix="smart-bench-audit-pg-", nats_servers=False) as (floor, _):
        return run(floor.floor.database_url("postgres"), entries=entries, jobs=jobs, progress=progress)
