"""``smart module``: one station module as a process of its own (what a module's DaemonSet pod runs).

``smart module run`` itself is started by :mod:`smart.launch` without loading this app (a module
process stays small); this group gives it its place in ``smart --help``.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Run one station module as its own process.", no_args_is_help=True)


@app.command("run")
def run(
    module: str = typer.Argument(..., help="The module, e.g. gatekeeper."),
    station: str = typer.Option(
        ..., "--station", help="Station id, e.g. pt-1 (on Kubernetes: the node's name)."
    ),
    leaf_url: str | None = typer.Option(
        None,
        "--leaf-url",
        envvar="SMART_LEAF_URL",
        help="The station's leaf NATS server (default: the one the settings give the station).",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        envvar="SMART_MODULE_METRICS_PORT",
        min=1,
        max=65535,
        help="Serve this process's /metrics on this port (default: none).",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1",
        "--metrics-host",
        envvar="SMART_MODULE_METRICS_HOST",
        help="The address /metrics listens on.",
    ),
) -> None:
    """Answer station.<station>.<module>.<verb> on the station's leaf until SIGTERM, as in-process."""
    from smart.node import module_run

    argv = [module, "--station", station, *(["--leaf-url", leaf_url] if leaf_url else [])]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port), "--metrics-host", metrics_host]
    raise typer.Exit(module_run.main(argv))
