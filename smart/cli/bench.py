"""``smart bench …``: speed figures measured on this machine (not asserted in tests)."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Measure SMART's hot paths on this machine.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Benchmarks: figures measured on this machine, one run each."""


@app.command("rules")
def rules(
    as_json: bool = typer.Option(False, "--json", help='Print {"p50_us", "p99_us", "baseline_call_us"}.'),
    iterations: int = typer.Option(20000, min=100, help="Decisions to time."),
) -> None:
    """Decision latency of a 50-rule contract, beside a bare Python function call in the same run."""
    from smart.contracts import benchmark

    figures = benchmark.run(iterations)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "p50_us": round(figures.p50_us, 2),
                    "p99_us": round(figures.p99_us, 2),
                    "baseline_call_us": round(figures.baseline_call_us, 3),
                }
            )
        )
        return
    typer.echo(f"rule engine, {figures.rules}-rule contract, {figures.iterations} decisions:")
    typer.echo(f"  p50 {figures.p50_us:.2f} µs   p99 {figures.p99_us:.2f} µs")
    typer.echo(f"  bare Python function call (same run): {figures.baseline_call_us:.3f} µs")


@app.command("access")
def access(
    as_json: bool = typer.Option(
        False, "--json", help='Print {"verifications_per_s", "bare_signature_verifications_per_s"}.'
    ),
    verifications: int = typer.Option(5000, min=1, help="Credential verifications to time."),
    revoked: int = typer.Option(10_000, min=0, help="Entries in the revocation list."),
) -> None:
    """Offline credential verifications per second, beside bare Ed25519 checks of the same token."""
    from smart.access import benchmark

    figures = benchmark.measure(verifications=verifications, revoked=revoked)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "verifications_per_s": round(figures.verifications_per_s, 1),
                    "bare_signature_verifications_per_s": round(
                        figures.bare_signature_verifications_per_s, 1
                    ),
                }
            )
        )
        return
    typer.echo(
        f"credential verification ({figures.verifications} tokens, "
        f"{figures.revocation_list_entries} revoked entries):"
    )
    typer.echo(f"  full: {figures.verifications_per_s:,.0f}/s")
    typer.echo(f"  bare Ed25519 signature check: {figures.bare_signature_verifications_per_s:,.0f}/s")


@app.command("ledger")
def ledger(
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"ingest_per_s", "plain_insert_per_s", "ingest_time_ratio", "node_appends_per_s", '
        '"verify_1m_s", …}.',
    ),
    ingest_entries: int = typer.Option(120_000, min=6000, help="Entries (from six nodes) to ingest."),
    verify_entries: int = typer.Option(1_000_000, min=6000, help="Size of the log to verify."),
    batch_size: int = typer.Option(1000, min=1, help="Entries per shipped batch."),
    appends: int = typer.Option(3000, min=100, help="Durable node appends to time."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="A PostgreSQL server to use (as a superuser); default: a temporary one."
    ),
) -> None:
    """Hub ingest vs plain COPY, node durable appends, and the time to verify a million entries."""
    import tempfile
    from pathlib import Path

    from smart import logs
    from smart.ledger import bench as ledger_bench

    logs.configure("WARNING")  # one line per integrated batch would drown the figures

    def say(line: str) -> None:
        if not as_json:
            typer.echo(line, err=True)

    def run(admin_url: str) -> ledger_bench.Figures:
        return ledger_bench.run(
            admin_url,
            ingest_entries=ingest_entries,
            verify_entries=verify_entries,
            batch_size=batch_size,
            appends=appends,
            progress=say,
        )

    if database_url is not None:
        figures = run(database_url)
    else:
        from smart.runtime import ports
        from smart.runtime.background import BackgroundFloor
        from smart.settings import Settings

        with tempfile.TemporaryDirectory(prefix="smart-bench-pg-") as tmp:
            settings = Settings(state_dir=Path(tmp) / "state", stations=1, postgres_port=ports.free_port())
            say("starting a temporary PostgreSQL …")
            with BackgroundFloor(settings, nats_servers=False) as floor:
                figures = run(floor.floor.database_url("postgres"))
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(f"ledger, {figures.ingest_entries} entries from 6 nodes in batches of {figures.batch_size}:")
    typer.echo(
        f"  hub ingest (chained, signature-checked, Merkle, checkpointed): {figures.ingest_per_s:,.0f}/s"
    )
    typer.echo(
        f"  plain COPY of the same rows into a bare table (same batches): {figures.plain_insert_per_s:,.0f}/s"
    )
    typer.echo(f"  ingest time / plain time: {figures.ingest_time_ratio:.2f}")
    typer.echo(f"  node durable appends (SQLite WAL, synchronous=FULL): {figures.node_appends_per_s:,.0f}/s")
    typer.echo(
        f"  raw SQLite FULL-sync single-row commits (same run): {figures.raw_sqlite_commits_per_s:,.0f}/s"
    )
    typer.echo(f"  verify {figures.verify_entries:,} entries: {figures.verify_1m_s:.2f} s per million")
    typer.echo(
        f"  wire read with every entry proved RFC 8785 canonical (the intake's door): "
        f"{figures.wire_read_per_s:,.0f}/s; the same read without that proof: "
        f"{figures.wire_read_unchecked_per_s:,.0f}/s"
    )


@app.command("propagation")
def propagation(
    as_json: bool = typer.Option(False, "--json", help='Print {"p50_s", "p99_s", …}.'),
    rounds: int = typer.Option(50, min=5, help="Revisions to deploy."),
    stations: int = typer.Option(6, min=1, max=32, help="Stations on the floor."),
) -> None:
    """From deploy to active on every station, beside a bare hub KV put seen on every mirror."""
    from smart import logs
    from smart.node import bench

    logs.configure("WARNING")  # the floor's start and the agents' lines go to stderr, and only warnings

    figures = bench.propagation(stations=stations, rounds=rounds)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "p50_s": round(figures.p50_s, 5),
                    "p99_s": round(figures.p99_s, 5),
                    "kv_mirror_p50_s": round(figures.kv_p50_s, 5),
                    "kv_mirror_p99_s": round(figures.kv_p99_s, 5),
                    "hub_deploy_p50_s": round(figures.deploy_p50_s, 5),
                    "first_revision_s": round(figures.first_s, 5),
                }
            )
        )
        return
    typer.echo(f"contract propagation to {figures.stations} stations, {figures.rounds} revisions:")
    typer.echo(
        f"  deploy → active everywhere: p50 {figures.p50_s * 1000:.1f} ms   p99 {figures.p99_s * 1000:.1f} ms"
    )
    typer.echo(f"  of which the hub's deploy (compile, sign, put): p50 {figures.deploy_p50_s * 1000:.1f} ms")
    first_ms = figures.first_s * 1000
    typer.echo(f"  the first revision after the agents started (warm-up, not counted): {first_ms:.1f} ms")
    typer.echo(
        f"  bare hub KV put → every mirror (same run): p50 {figures.kv_p50_s * 1000:.1f} ms   "
        f"p99 {figures.kv_p99_s * 1000:.1f} ms"
    )


@app.command("resync")
def resync(
    as_json: bool = typer.Option(False, "--json", help='Print {"entries_per_s_per_station", …}.'),
    entries: int = typer.Option(5000, min=100, help="Entries each station appends while the hub is down."),
    stations: int = typer.Option(6, min=1, max=32, help="Stations on the floor."),
    in_process: bool = typer.Option(
        False, "--in-process", help="All agents in the bench's own process, beside the intake (not a floor)."
    ),
) -> None:
    """How fast stations' backlogs reach the hub log after a hub outage."""
    from smart import logs
    from smart.node import bench

    logs.configure("WARNING")  # the floor's start and the agents' lines go to stderr, and only warnings

    figures = bench.resync(stations=stations, per_station=entries, processes=not in_process)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "entries_per_s_per_station": round(figures.entries_per_s_per_station, 1),
                    "stations": figures.stations,
                    "seconds": round(figures.seconds, 3),
                    "first_entry_s": round(figures.first_entry_s, 3),
                    "hub_start_s": round(figures.hub_start_s, 3),
                    "agents": figures.agents,
                    "hub_alone_entries_per_s_per_station": round(
                        figures.hub_alone_entries_per_s_per_station, 1
                    ),
                }
            )
        )
        return
    typer.echo(
        f"resync after a hub outage: {figures.stations} stations × {figures.entries_per_station} entries "
        f"in {figures.seconds:.2f} s from the hub answering again"
        f" (its restart took {figures.hub_start_s:.2f} s); agents: {figures.agents}"
    )
    typer.echo(
        f"  {figures.entries_per_s_per_station:,.0f} entries/s per station (ingested, Merkle-integrated)"
    )
    typer.echo(
        f"  baseline, same run: the hub alone reading and ingesting the same batches (no NATS, no agents)"
        f" {figures.hub_alone_entries_per_s_per_station:,.0f} entries/s per station"
    )


@app.command("vision")
def vision(
    as_json: bool = typer.Option(False, "--json", help='Print {"pyzbar_ms", "opencv_ms", …}.'),
    frames: int = typer.Option(300, min=1, help="Generated 640×480 frames to decode with each decoder."),
    warmup: int = typer.Option(20, min=0, help="Untimed frames decoded first by each decoder."),
) -> None:
    """Decode time per 640×480 frame for pyzbar and OpenCV's QR detector, over the same frames."""
    from smart.modules.vision import bench as vision_bench

    figures = vision_bench.run(frames, warmup=warmup)
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(f"QR decoding, {figures.frames} generated 640×480 frames (noise, blur, rotation):")
    typer.echo(f"  pyzbar: {figures.pyzbar_ms:.2f} ms/frame   read {figures.pyzbar_read}/{figures.frames}")
    typer.echo(f"  OpenCV: {figures.opencv_ms:.2f} ms/frame   read {figures.opencv_read}/{figures.frames}")
    typer.echo(f"  OpenCV / pyzbar time (same run): {figures.ratio:.2f}")


@app.command("station")
def station(
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"decisions_per_s", "p99_ms", "in_process_p99_ms", "out_of_process_p99_ms",'
        ' "out_of_process_rss_mb", …}.',
    ),
    requests: int = typer.Option(2000, min=10, help="Gate decisions to time, one after another."),
) -> None:
    """Gate decisions end to end at pt-1 beside a bare NATS request-reply, and the station's memory."""
    from smart import logs
    from smart.node import bench_station

    logs.configure("WARNING")  # a line per module started would drown the figures
    figures = bench_station.run(requests)
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(
        f"gate decisions at {bench_station.STATION} ({figures.requests} sequential Gatekeeper start requests "
        f"after {figures.warmup} untimed, each replied once durable on the node ledger):"
    )
    typer.echo(f"  {figures.decisions_per_s:,.0f} decisions/s (one request at a time)")
    typer.echo(f"  p50 {figures.p50_ms:.2f} ms   p99 {figures.p99_ms:.2f} ms   (target p99 <= 5 ms)")
    typer.echo(
        f"  bare NATS request-reply on the same leaf (same run, interleaved): "
        f"p50 {figures.nats_p50_ms:.3f} ms   p99 {figures.nats_p99_ms:.3f} ms"
    )
    typer.echo(f"  gate p99 / bare request-reply p99: {figures.p99_ratio:.1f}")
    typer.echo(
        f"  raw SQLite WAL FULL-sync single-row commit beside the ledger (same run, interleaved): "
        f"p50 {figures.sqlite_p50_ms:.3f} ms   p99 {figures.sqlite_p99_ms:.3f} ms"
    )
    typer.echo(
        f"  resident memory of the process running the station and its {len(figures.modules)} modules "
        f"in-process: {figures.rss_mb:.0f} MB (target <= 600 MB); "
        f"{figures.rss_delta_mb:.0f} MB more than before the station started"
    )
    if figures.out_of_process_p99_ms is not None:
        ratio = figures.out_of_process_p99_ms / figures.p99_ms
        total = sum(mb for _, mb in figures.out_of_process_rss_mb)
        typer.echo(
            f"  every module in a process of its own (smart module run; same run, same rounds): "
            f"p50 {figures.out_of_process_p50_ms:.2f} ms   p99 {figures.out_of_process_p99_ms:.2f} ms   "
            f"= {ratio:.2f}x the in-process p99 (target <= 1.5x)"
        )
        typer.echo(
            f"  module processes resident: {total:.0f} MB summed (target <= 1024 MB): "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in figures.out_of_process_rss_mb)
        )
        if figures.out_of_process_pss_total_mb is not None:
            typer.echo(
                f"  the same processes' proportional set sizes summed (shared libraries counted once): "
                f"{figures.out_of_process_pss_total_mb:.0f} MB"
            )


@app.command("metrics")
def metrics(
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"station_metrics_ms", "station_metrics_p50_ms", "baseline_p95_ms", …}.',
    ),
    scrapes: int = typer.Option(
        200, min=1, help="Scrapes of /metrics to time (and as many of the baseline)."
    ),
    url: str | None = typer.Option(
        None, help="A running station's web base URL (default: a station of this run's own)."
    ),
) -> None:
    """Time to serve a station's /metrics (p50/p95), beside an empty route of the same server."""
    from smart import logs
    from smart.node import bench_metrics

    logs.configure("WARNING")  # a line per child started would drown the figures
    figures = bench_metrics.run(scrapes, url)
    if as_json:
        typer.echo(json.dumps(figures.to_json()))
        return
    typer.echo(f"station /metrics, {figures.scrapes} scrapes ({figures.metrics_bytes:,} bytes each):")
    typer.echo(
        f"  p50 {figures.metrics_p50_ms:.2f} ms   p95 {figures.metrics_p95_ms:.2f} ms   (target <= 5 ms)"
    )
    typer.echo(
        f"  empty route of the same server (same run, alternating): "
        f"p50 {figures.baseline_p50_ms:.2f} ms   p95 {figures.baseline_p95_ms:.2f} ms"
    )
    if figures.render_p95_ms is not None:
        typer.echo(f"  the station's render of the text, in its process: p95 {figures.render_p95_ms:.3f} ms")


@app.command("hub")
def hub(
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"po_search_p95_ms", "baseline_p95_ms", "import_10k_s", "release_to_station_p99_ms", …}.',
    ),
    po_lines: int = typer.Option(100_000, min=10, help="PO lines in the database searched."),
    searches: int = typer.Option(300, min=2, help="Searches to time."),
    import_lines: int = typer.Option(10_000, min=10, help="Lines in the imported CSV."),
    releases: int = typer.Option(
        100, min=2, help="Releases to time (at most one per PO of the seeded lines)."
    ),
    decisions: int = typer.Option(1_000_000, min=10, help="Station decisions ComplianceCentral searches."),
    ledger_entries: int = typer.Option(1_000_000, min=100, help="Hub-log entries the recall lists from."),
    assets: int = typer.Option(10_000, min=10, help="Assets in the register the due calendar reads."),
    calendar_pages: int = typer.Option(300, min=2, help="Due-calendar pages to time."),
) -> None:
    """PO search over 100,000 lines beside a plain SELECT, a 10,000-line import, release → station record."""
    from smart import logs
    from smart.runtime import work_bench

    logs.configure("WARNING")

    def say(line: str) -> None:
        if not as_json:
            typer.echo(line, err=True)

    figures = work_bench.run_on_temporary_floor(
        say,
        po_lines=po_lines,
        searches=searches,
        import_lines=import_lines,
        releases=min(releases, po_lines // 10),
        decisions=decisions,
        ledger_entries=ledger_entries,
        assets=assets,
        calendar_pages=calendar_pages,
    )
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(f"hub work services, {figures.po_lines:,} PO lines:")
    typer.echo(f"  PO search (prefix, joined, soonest due first) p95: {figures.po_search_p95_ms:.2f} ms")
    typer.echo(f"  plain SELECT of the same rows (same run) p95: {figures.baseline_p95_ms:.2f} ms")
    typer.echo(
        f"  import of a {figures.import_lines:,}-line CSV, scaled to 10,000: {figures.import_10k_s:.2f} s"
    )
    typer.echo(
        f"  release → record in pt-1's mirror p99 ({figures.releases} releases): "
        f"{figures.release_to_station_p99_ms:.2f} ms"
    )
    if figures.policy is not None:
        policy = figures.policy
        typer.echo(
            f"  compliance search over {policy.decisions:,} decisions p95: "
            f"{policy.compliance_search_p95_ms:.2f} ms"
        )
        typer.echo(f"  what was in force at a station at T p95: {policy.in_force_at_ms:.2f} ms")
        typer.echo(
            f"  plain primary-key SELECT of one decision (same run) p95: "
            f"{policy.lookup_baseline_p95_ms:.3f} ms"
        )

    held = figures.maintenance
    if held is not None:
        typer.echo(f"MaintenanceHub, {held.ledger_entries:,}-entry hub log, {held.assets:,} assets:")
        typer.echo(
            f"  recall impact list ({held.recalled_jobs} jobs) recorded: {held.recall_impact_s:.3f} s"
            f" (reading the log instead, same run: {held.recall_scan_baseline_s:.2f} s;"
            f" indexing the log once: {held.recall_index_s:.1f} s)"
        )
        typer.echo(
            f"  due-calendar page p95 ({held.calendar_pages} pages): {held.due_calendar_p95_ms:.2f} ms"
            f" (plain SELECT of the same rows p95: {held.due_calendar_baseline_p95_ms:.2f} ms;"
            f" the page's own query and template: {held.due_calendar_own_p95_ms:.2f} ms)"
        )


@app.command("audit")
def audit(
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"packet_html_s", "packet_pdf_s", "impact_s", "offline_verify_ms", "ledger_entries", …}.',
    ),
    entries: int = typer.Option(1_000_000, min=2000, help="Entries in the log (jobs plus filler stations)."),
    jobs: int = typer.Option(3000, min=2, help="Walked jobs (pt-1 then sr-1) among them."),
) -> None:
    """A job's audit packet (HTML, PDF), a reverse search and the client's offline check on a big log."""
    from smart import logs
    from smart.runtime import audit_bench

    logs.configure("WARNING")

    def say(line: str) -> None:
        if not as_json:
            typer.echo(line, err=True)

    figures = audit_bench.run_on_temporary_floor(say, entries=entries, jobs=jobs)
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(f"AuditCentral on a log of {figures.ledger_entries:,} entries ({figures.jobs:,} walked jobs):")
    typer.echo(
        f"  packet HTML ({figures.cited_entries} entries cited and proved): {figures.packet_html_s:.2f} s "
        f"(plain SELECT of the same entries: {figures.baseline_select_s * 1000:.1f} ms)"
    )
    typer.echo(f"  packet PDF: {figures.packet_pdf_s:.2f} s (a one-page PDF: {figures.baseline_pdf_s:.2f} s)")
    typer.echo(
        f"  reverse search, {figures.impact_jobs:,} jobs: {figures.impact_s * 1000:.1f} ms "
        f"(bare count of the index rows: {figures.baseline_impact_s * 1000:.1f} ms)"
    )
    offline = (
        "n/a (no Playwright)" if figures.offline_verify_ms is None else f"{figures.offline_verify_ms:.1f} ms"
    )
    typer.echo(
        f"  offline page in Chromium: {offline} (smart verify in Python: {figures.baseline_verify_ms:.1f} ms)"
    )
    typer.echo(
        f"  (medians of {figures.rounds} rounds; load average {figures.load_average[0]:.1f}"
        f"–{figures.load_average[1]:.1f} while timing; building the log took {figures.build_s:.0f} s)"
    )


@app.command("api")
def api(
    as_json: bool = typer.Option(
        False, "--json", help='Print {"p99_ms", "bare_p99_ms", "requests_per_s", …}.'
    ),
    requests: int = typer.Option(2000, min=10, max=100_000, help="Requests to each route (bounds the run)."),
    rate: float = typer.Option(200.0, min=1, max=5000, help="Requests a second the load generator sends."),
    pos: int = typer.Option(200, min=1, help="POs of the client whose API is read."),
    rounds: int = typer.Option(4, min=1, max=100, help="Interleaved rounds of the bare route and the API."),
) -> None:
    """The client API's p99 at a fixed rate on loopback, beside a bare FastAPI route's in the same run."""
    from smart import logs
    from smart.runtime import api_bench

    logs.configure("WARNING")

    def say(line: str) -> None:
        if not as_json:
            typer.echo(line, err=True)

    figures = api_bench.run_on_temporary_floor(say, requests=requests, rate=rate, pos=pos, rounds=rounds)
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(f"client API, {figures.requests} requests offered at {figures.offered_per_s:g}/s (loopback):")
    typer.echo(f"  GET /api/v1/client/pos/{{po}} p99 {figures.p99_ms:.2f} ms (p50 {figures.p50_ms:.2f} ms)")
    typer.echo(
        f"  bare FastAPI route (same run) p99 {figures.bare_p99_ms:.2f} ms (p50 {figures.bare_p50_ms:.2f} ms)"
    )
    typer.echo(f"  answered {figures.requests_per_s:.0f} requests/s; {figures.refused} not 200")
    typer.echo(
        f"  CPU a request: server {figures.server_cpu_ms:.2f} ms (bare {figures.bare_server_cpu_ms:.2f} ms), "
        f"PostgreSQL {figures.database_cpu_ms:.2f} ms; load average {figures.load_before:.1f} → "
        f"{figures.load_after:.1f}"
    )
    typer.echo(
        f"  {figures.rounds} interleaved rounds, p99 ms: API {figures.rounds_p99_ms}, "
        f"bare {figures.rounds_bare_p99_ms}; the generator's own lateness "
        f"p99 {figures.generator_late_p99_ms:.2f} ms"
    )


@app.command("dashboards")
def dashboards(
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"page_p95_ms", "panel_query_max_ms", "ledger_entries", …} with the baselines.',
    ),
    entries: int = typer.Option(1_000_000, min=1000, help="Entries in the hub log (six stations' history)."),
    pages: int = typer.Option(100, min=2, help="Dashboard pages fetched over HTTP."),
    rounds: int = typer.Option(20, min=2, help="Times each panel's query is asked."),
    scrapes: int = typer.Option(200, min=1, help="Scrapes of a station's /metrics to time."),
) -> None:
    """The dashboard page's p95 and each panel's query on a big hub log, beside baselines of the same run."""
    import dataclasses

    from smart import logs
    from smart.node import bench_metrics
    from smart.runtime import dashboard_bench

    logs.configure("WARNING")

    def say(line: str) -> None:
        if not as_json:
            typer.echo(line, err=True)

    figures = dashboard_bench.run_on_temporary_floor(say, ledger_entries=entries, pages=pages, rounds=rounds)
    say("timing a station's /metrics on a one-station floor of its own …")
    scraped = bench_metrics.run(scrapes)
    figures = dataclasses.replace(
        figures,
        station_metrics_ms=scraped.metrics_p95_ms,
        station_metrics_baseline_ms=scraped.baseline_p95_ms,
    )
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    typer.echo(f"The dashboard on a hub log of {figures.ledger_entries:,} entries (6 stations):")
    typer.echo(
        f"  page p95 over {figures.pages} pages: {figures.page_p95_ms:.1f} ms "
        f"(/healthz on the same app and session: {figures.page_baseline_p95_ms:.1f} ms)"
    )
    for key, ms in figures.panel_ms.items():
        typer.echo(f"  panel {key}: p95 {ms:.1f} ms")
    typer.echo(
        f"  slowest panel: {figures.panel_query_max_ms:.1f} ms (SELECT 1: {figures.panel_baseline_ms:.2f} ms;"
        f" count(*) of the log: {figures.count_baseline_ms:.1f} ms)"
    )
    typer.echo(f"  (building the log took {figures.build_s:.0f} s)")
    loads = ", ".join(f"{x:.1f}" for x in figures.load_average)
    typer.echo(f"  machine load (1-min average, after the panels and after the pages): {loads}")
    typer.echo(
        f"  station /metrics p95: {scraped.metrics_p95_ms:.2f} ms (target <= 5 ms; empty route of the same"
        f" server: {scraped.baseline_p95_ms:.2f} ms)"
    )
