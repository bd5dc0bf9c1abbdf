"""``smart up --demo-shop`` loads the demo PO through the hub's work services, and the hub shows it."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.runtime.conftest import SMART, DemoFloor, floor_env


def test_up_with_the_demo_shop_releases_its_po_through_the_hub_to_pt_1_and_sr_1(
    demo_floor: DemoFloor,
) -> None:
    floor = demo_floor.floor
    env = floor_env(floor.settings)
    deadline = time.monotonic() + 120
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = subprocess.run(
            [SMART, "po", "show", "PO-4411"], env=env, capture_output=True, text=True, timeout=60
        )
        if found.returncode == 0:
            shown = json.loads(found.stdout)
            break
        time.sleep(1)
    assert shown, "\n".join(floor.output)
    (line,) = shown["lines"]
    assert line["reviewed"] and line["released_version"] == 1
    assert line["traveler"]["status"] == "released"
    assert [op["station"] for op in line["traveler"]["operations"]] == ["pt-1", "sr-1"]
    # the procedure and the lot came through StandardsCentral and InventoryHub (read with their CLI)
    standards = subprocess.run(
        [SMART, "standards", "show", "PT-PROC-12"], env=env, capture_output=True, text=True, timeout=60
    )
    assert standards.returncode == 0, standards.stderr
    revisions = [(r["revision"], r["approved_by"], r["in_force"]) for r in json.loads(standards.stdout)]
    assert revisions == [("D", "l3-1", True)]  # signed with the demo Level 3's own credential
    lots = subprocess.run([SMART, "inventory", "lots"], env=env, capture_output=True, text=True, timeout=60)
    assert lots.returncode == 0, lots.stderr
    assert [(lot["id"], lot["certificate"]) for lot in json.loads(lots.stdout)] == [("PEN-2291", "CERT-2291")]
