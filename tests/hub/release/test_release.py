"""Releasing a PO line through HandoffCentral: reviewed first, into the routed stations' records only."""

from __future__ import annotations

import json

import pytest
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from smart.bus import buckets
from smart.hub.clients.models import Outcome, ReviewIn
from smart.hub.clients.store import Refused
from smart.hub.service_log import HANDOFF_CENTRAL, TRAVELERS
from smart.hub.travelers.models import TemplateIn, TravelerIn
from smart.node import records
from tests.hub.release.conftest import handoff
from tests.hub.shop import QM, STATIONS, Work, entered, line, operation, route_pt_to_sr


async def keys(js: JetStreamContext) -> set[str]:
    """The bucket's live keys, read from its stream: nats-py's ``keys()`` can come back short under load."""
    await records.ensure_records_bucket(js)
    return set(await buckets.live_entries(await js.key_value(records.RECORDS_BUCKET)))


async def test_a_line_is_not_released_before_its_contract_review_and_nothing_reaches_a_station(
    work: Work, js: JetStreamContext
) -> None:
    entered(work, reviewed=False)
    with pytest.raises(Refused) as refused:
        await handoff(work, js).release("PO-4411", "1", actor=QM)
    assert refused.value.field == "review"
    assert await keys(js) == set()
    assert work.node(HANDOFF_CENTRAL).entries() == []

    work.clients.review("PO-4411", "1", ReviewIn(outcome=Outcome.ACCEPTED), actor=QM)
    work.clients.change_line("PO-4411", line(part_revision="D"), actor="planner")  # re-opens the review
    with pytest.raises(Refused, match="changed since its review"):
        await handoff(work, js).release("PO-4411", "1", actor=QM)
    assert await keys(js) == set()


async def test_release_reaches_only_the_routed_stations_with_what_each_needs(
    work: Work, js: JetStreamContext
) -> None:
    entered(work)
    released = await handoff(work, js).release("PO-4411", "1", actor=QM)
    assert released.stations == ("sr-1", "pt-1")
    assert await keys(js) == {
        "pt-1.po-line.PO-4411/1",
        "pt-1.procedure.PT-PROC-12",
        "sr-1.po-line.PO-4411/1",
        "sr-1.procedure.SR-PROC-3",
    }
    bucket = await js.key_value(records.RECORDS_BUCKET)
    entry = await bucket.get("pt-1.po-line.PO-4411/1")
    assert entry.value is not None
    at_pt = records.parse("po-line", json.loads(entry.value))
    assert at_pt.released and at_pt.part == "BRK-220" and at_pt.serials == ("SN-001", "SN-002")
    assert at_pt.operations == ("penetrant",) and at_pt.contract_reviewed_by == QM
    assert at_pt.flowdowns["spec"] == "ASTM E1417-21"
    assert at_pt.flowdowns["retention"] == "10 years after final payment"
    for station in set(STATIONS) - {"pt-1", "sr-1"}:
        with pytest.raises(KeyNotFoundError):
            await bucket.get(f"{station}.po-line.PO-4411/1")
    (entry_on_ledger,) = work.node(HANDOFF_CENTRAL).entries()
    assert entry_on_ledger.kind == "po.line.released" and entry_on_ledger.actor == QM
    assert set(entry_on_ledger.data["keys"]) == await keys(js)
    assert work.travelers.latest("PO-4411", "1").status == "released"  # type: ignore[union-attr]


async def test_a_traveler_changed_after_release_is_a_new_revision_with_its_reason_and_released_again(
    work: Work, js: JetStreamContext
) -> None:
    entered(work)
    central = handoff(work, js)
    await central.release("PO-4411", "1", actor=QM)
    only_pt = TravelerIn(operations=(operation("pt-1", "penetrant", "PT-PROC-12", "D"),))
    with pytest.raises(Refused) as refused:
        work.travelers.save("PO-4411", "1", only_pt, actor="l3-1")
    assert refused.value.field == "reason"
    revised = work.travelers.save(
        "PO-4411", "1", only_pt.model_copy(update={"reason": "client ships from its own dock"}), actor="l3-1"
    )
    assert revised.revision == 2 and revised.status == "draft"
    first = work.travelers.revisions("PO-4411", "1")[0]
    assert first.status == "released" and first.stations() == ["sr-1", "pt-1"]  # frozen as released
    kinds = [(e.kind, e.data.get("revision"), e.data.get("reason")) for e in work.node(TRAVELERS).entries()]
    assert ("traveler.revised", 2, "client ships from its own dock") in kinds

    again = await central.release("PO-4411", "1", actor=QM)
    assert again.traveler_revision == 2 and again.withdrawn == ("sr-1.po-line.PO-4411/1",)
    assert "sr-1.po-line.PO-4411/1" not in await keys(js)


async def test_a_traveler_naming_an_unknown_station_or_an_unapproved_revision_is_refused(work: Work) -> None:
    entered(work, routed=False)
    with pytest.raises(Refused) as unknown:
        work.travelers.save(
            "PO-4411",
            "1",
            TravelerIn(operations=(operation("xx-9", "penetrant", "PT-PROC-12", "D"),)),
            actor="l3-1",
        )
    assert unknown.value.field == "operations[0].station"
    with pytest.raises(Refused) as unapproved:
        work.travelers.save(
            "PO-4411",
            "1",
            TravelerIn(operations=(operation("pt-1", "penetrant", "PT-PROC-12", "C"),)),
            actor="l3-1",
        )
    assert unapproved.value.field == "operations[0].procedure_revision"
    assert "the approved revision is D" in unapproved.value.message
    assert work.travelers.latest("PO-4411", "1") is None


def test_a_traveler_takes_its_route_from_the_template_for_its_part(work: Work) -> None:
    entered(work, routed=False)
    template = TemplateIn(name="BRK-220-PT", part="BRK-220", operations=route_pt_to_sr().operations)
    saved = work.travelers.add_template(template, actor="l3-1")
    assert [op.station for op in saved.operations] == ["sr-1", "pt-1"]
    assert work.travelers.template_for(part="BRK-220") == saved
    traveler = work.travelers.save("PO-4411", "1", TravelerIn(template="BRK-220-PT"), actor="l3-1")
    assert traveler.template == "BRK-220-PT" and traveler.stations() == ["sr-1", "pt-1"]
    edited = work.travelers.save(
        "PO-4411",
        "1",
        TravelerIn(operations=(operation("pt-1", "penetrant", "PT-PROC-12", "D"),)),
        actor="l3-1",
    )
    assert edited.revision == 1 and edited.stations() == ["pt-1"]  # a draft is edited in place
