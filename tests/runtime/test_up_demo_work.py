"""``smart up --demo-shop`` loads the demo PO through the hub's work services, and the hub shows it."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from smart.settings import Settings
from tests.runtime.conftest import SMART, RunningFloor, floor_env, start_up


def test_up_with_the_demo_shop_releases_its_po_through_the_hub_to_pt_1_and_sr_1(
    up_settings: Settings, running_floors: list[RunningFloor]
) -> None:
    floor = start_up(up_settings, "--demo-shop", deadline_s=120)
    running_floors.append(floor)
    env = floor_env(up_settings)
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
