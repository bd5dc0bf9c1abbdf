"""``smart client|po|traveler`` as a person types them: enter, route, review, release, show; refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import yaml

from smart.testing.cli import invoke
from smart.testing.plugin import FloorFactory
from tests.hub.conftest import HubDatabase
from tests.hub.release.test_release import keys
from tests.hub.shop import order, route_pt_to_sr


def test_a_po_walks_from_the_command_line_to_the_routed_stations(
    hub_db: HubDatabase, tmp_path: Path, floor_factory: FloorFactory
) -> None:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    hub_url = floor.hub_url
    env = {
        "SMART_DATABASE_URL": hub_db.owner_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
        "SMART_STATIONS": "6",
        "SMART_NATS_URL": hub_url,
    }

    def smart(*args: str) -> Any:
        return invoke(*args, env=env)

    added = smart(
        "client",
        "add",
        "AEROSPAR",
        "--name",
        "Aerospar",
        "--retention",
        "10 years after final payment",
        "--nadcap",
    )
    assert added.exit_code == 0, added.output
    po_file = tmp_path / "po.yaml"
    po_file.write_text(yaml.safe_dump(order().model_dump(mode="json", by_alias=True)))
    assert smart("po", "add", str(po_file)).exit_code == 0
    bad = order("PO-2").model_dump(mode="json", by_alias=True)
    bad["lines"][0]["flowdowns"] = []
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(yaml.safe_dump(bad))
    refused = smart("po", "add", str(bad_file))
    assert (
        refused.exit_code == 1
        and "lines.0: flowdowns: a PO line needs at least one flowdown" in refused.stderr
    )
    for procedure, revision, method in (("PT-PROC-12", "D", "PT"), ("SR-PROC-3", "B", "SR")):
        approved = smart(
            "traveler",
            "procedure",
            procedure,
            revision,
            "--method",
            method,
            "--approved-by",
            "l3-1",
            "--validated",
        )
        assert approved.exit_code == 0, approved.output
    route = tmp_path / "route.yaml"
    route.write_text(yaml.safe_dump(route_pt_to_sr().model_dump(mode="json", by_alias=True)))
    assert smart("traveler", "set", "PO-4411", "1", str(route)).exit_code == 0

    early = smart("po", "release", "PO-4411", "1")
    assert early.exit_code == 1 and "review: PO PO-4411 line 1 is not contract-reviewed" in early.stderr
    reviewed = smart("po", "review", "PO-4411", "1", "--accept", "--notes", "capability ok")
    assert reviewed.exit_code == 0 and json.loads(reviewed.stdout)["reviews"][0]["reviewer"].startswith(
        "cli:"
    )
    released = smart("po", "release", "PO-4411", "1")
    assert released.exit_code == 0, released.output
    assert json.loads(released.stdout)["stations"] == ["sr-1", "pt-1"]
    shown = json.loads(smart("po", "show", "PO-4411").stdout)
    assert shown["lines"][0]["traveler"]["status"] == "released"
    assert [s["serial"] for s in shown["lines"][0]["job"]["serials"]] == ["SN-001", "SN-002"]
    assert asyncio.run(_keys(hub_url)) == {
        "pt-1.po-line.PO-4411/1",
        "pt-1.procedure.PT-PROC-12",
        "sr-1.po-line.PO-4411/1",
        "sr-1.procedure.SR-PROC-3",
    }


async def _keys(url: str) -> set[str]:
    connection = await nats.connect(url)
    try:
        return await keys(connection.jetstream())
    finally:
        await connection.close()
