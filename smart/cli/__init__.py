"""The ``smart`` command: one entry point, one sub-command group per job.

Each group lives in its own file beside this one and is added here, so
``smart --help`` lists everything a person can do.
"""

from __future__ import annotations

import typer

from smart.cli import (
    advice,
    audit,
    bench,
    client_api,
    compliance,
    config,
    contracts,
    credentials,
    floor,
    grafana,
    hub,
    jobs,
    ledger,
    maintenance,
    means,
    module,
    node,
    operator,
    people,
    station,
    work,
)

app = typer.Typer(
    name="smart",
    help="SMART: contracts, ledger, credentials and stations of a special-processing shop.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(config.app, name="config")
app.command("up")(floor.up)
app.add_typer(contracts.contract_app, name="contract")
app.add_typer(compliance.compliance_app, name="compliance")
app.command("apply")(contracts.apply)
app.command("get")(contracts.get)
app.command("crds")(contracts.crds)
app.add_typer(operator.app, name="operator")
app.add_typer(bench.app, name="bench")
app.add_typer(people.app, name="people")
app.add_typer(credentials.app, name="credentials")
app.add_typer(station.app, name="station")
app.add_typer(node.app, name="node")
app.add_typer(module.app, name="module")
app.add_typer(hub.app, name="hub")
app.add_typer(ledger.app, name="ledger")
app.add_typer(grafana.app, name="grafana")
app.command("verify")(ledger.verify_bundle)
app.add_typer(jobs.app, name="jobs")
app.add_typer(work.client_app, name="client")
app.add_typer(work.po_app, name="po")
app.add_typer(work.traveler_app, name="traveler")
app.add_typer(audit.app, name="audit")
app.add_typer(maintenance.app, name="maintenance")
app.add_typer(means.standards_app, name="standards")
app.add_typer(means.ncr_app, name="ncr")
app.add_typer(means.inventory_app, name="inventory")
app.add_typer(means.matrix_app, name="training-matrix")
work.client_app.add_typer(client_api.key_app, name="key")
app.add_typer(client_api.invoice_app, name="invoice")
app.add_typer(advice.app, name="advice")


def main() -> None:
    app()
