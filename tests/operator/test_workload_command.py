"""A module's DaemonSet pod runs ``smart module run <module> --station <its node's station>``."""

from __future__ import annotations

import re
from typing import Any

import typer.main

from smart.cli import app
from smart.contracts.reconcile import Workload
from smart.operator import workloads


def test_each_module_pod_runs_the_module_for_the_station_of_the_node_it_landed_on() -> None:
    workload = Workload(
        module="gatekeeper",
        image="smart-station:test",
        stations=("pt-1", "mt-1"),
        node_selectors=({"smart.aero/station": "pt-1"}, {"smart.aero/station": "mt-1"}),
        contracts=("penetrant",),
    )
    (container,) = workloads.daemonset(workload, namespace="smart", owners={})["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["SMART_STATION"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    # as the kubelet expands $(VAR) from the container's env on node pt-1
    args = [re.sub(r"\$\(SMART_STATION\)", "pt-1", a) for a in container["args"]]
    assert args == ["module", "run", "gatekeeper", "--station", "pt-1"]
    command: Any = typer.main.get_command(app)  # typer's own click group
    context = command.make_context("smart", list(args), resilient_parsing=True)
    run = command.get_command(context, "module").get_command(context, "run")
    parsed = run.make_context("run", args[2:])  # the smart command accepts exactly these arguments
    assert parsed.params["module"] == "gatekeeper" and parsed.params["station"] == "pt-1"
