"""``smart operator run``: the kopf operator, the same as ``kopf run -m smart.operator.handlers``."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="The Kubernetes operator for SmartContracts and Stations.", no_args_is_help=True)


@app.command("run")
def run(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Watch only these namespaces."),
    standalone: bool = typer.Option(True, help="Run without peering (one replica, Recreate)."),
) -> None:
    """Watch SmartContracts and Stations; deploy, distribute and retire until stopped."""
    import kopf

    from smart import logs
    from smart import settings as smart_settings
    from smart.operator import handlers

    logs.configure(smart_settings.load().log_level)
    asyncio.run(
        kopf.operator(
            registry=handlers.registry(),
            clusterwide=not namespace,
            namespaces=namespace,
            standalone=standalone,
        )
    )
