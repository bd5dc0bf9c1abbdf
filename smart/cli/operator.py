"""``smart operator run``: the kopf operator, the same as ``kopf run -m smart.operator.handlers``."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="The Kubernetes operator for SmartContracts and Stations.", no_args_is_help=True)


@app.command("run")
def run(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Watch only these namespaces."),
    standalone: bool = typer.Option(True, help="Run without peering (one replica, Recreate)."),
    liveness: str | None = typer.Option(
        None,
        "--liveness",
        help="kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz (it runs the operator's probes).",
    ),
    metrics_port: int = typer.Option(
        0, "--metrics-port", help="Serve /metrics (Prometheus) and /readyz on this port; 0: not served."
    ),
    metrics_host: str = typer.Option("0.0.0.0", "--metrics-host", help="Address of the metrics port."),
) -> None:
    """Watch SmartContracts and Stations; deploy, distribute and retire until stopped."""
    import kopf

    from smart import logs
    from smart import settings as smart_settings
    from smart.operator import handlers, metrics

    logs.configure(smart_settings.load().log_level)

    async def main() -> None:
        runner = await metrics.serve(metrics_host, metrics_port, handlers.ready) if metrics_port else None
        try:
            await kopf.operator(
                registry=handlers.registry(),
                clusterwide=not namespace,
                namespaces=namespace,
                standalone=standalone,
                liveness_endpoint=liveness,
            )
        finally:
            if runner is not None:
                await runner.cleanup()

    asyncio.run(main())
