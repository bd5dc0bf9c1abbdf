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
