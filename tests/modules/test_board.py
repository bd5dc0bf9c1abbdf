"""The public status board: states through a job, and no trace of the person who did the work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules.info_broadcast import board

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
REVISIONS = {"pt-penetrant": "9f2c4e1a7b3d5c6e8f901234", "shop-safety": "1a2b3c4d5e6f7a8b9c0d"}


def walked_in(action: str = "operate") -> f.Event:
    return f.Event(
        action=action,
        at=AT,
        station="pt-1",
        person="op-7",
        supervisor="sup-3",
        job="J-1001",
        attributes={"badge": "BADGE-55817"},
        scan=f.Scan(po="PO-77", line="1", part="BRKT-220", serial="SN-0042"),
    )


def test_a_new_station_is_idle_with_no_decision() -> None:
    status = board.Status("pt-1")
    assert status.to_json() == {
        "station": "pt-1",
        "state": "idle",
        "job": None,
        "revisions": {},
        "lastOutcome": None,
        "lastAction": None,
        "lastDecisionAt": None,
        "blockedBy": [],
    }


def test_an_allowed_job_puts_the_station_in_job_with_its_revisions() -> None:
    status = board.after_decision(
        board.Status("pt-1"), event=walked_in(), outcome="allow", revisions=REVISIONS
    )
    assert (status.state, status.job, status.last_outcome, status.last_decision_at) == (
        "in-job",
        "J-1001",
        "allow",
        AT,
    )
    assert dict(status.revisions) == REVISIONS


def test_a_deny_blocks_the_station_naming_only_the_rule_ids() -> None:
    reasons = (
        engine.Reason("eye-exam", "op-7's near-vision exam of 2025-02-01 is older than 12 months"),
        engine.Reason("spc.we2.uv-a-intensity", "trend", severity="warn"),
    )
    status = board.after_decision(board.Status("pt-1"), event=walked_in(), outcome="deny", reasons=reasons)
    assert (status.state, status.blocked_by) == ("blocked", ("eye-exam",))
    allowed = board.after_decision(status, event=walked_in("measure"), outcome="warn", reasons=reasons)
    assert (allowed.state, allowed.blocked_by) == ("in-job", ())


def test_release_leaves_the_station_idle_and_revisions_stay_when_not_given() -> None:
    status = board.after_decision(
        board.Status("pt-1"), event=walked_in(), outcome="allow", revisions=REVISIONS
    )
    released = board.after_decision(status, event=walked_in("release"), outcome="allow")
    assert (released.state, released.job, released.last_action) == ("idle", None, "release")
    assert dict(released.revisions) == REVISIONS


def test_offline_and_back_online_keep_the_job() -> None:
    status = board.after_decision(board.Status("pt-1"), event=walked_in(), outcome="allow")
    assert board.offline(status).state == "offline"
    assert board.online(board.offline(status)).state == "in-job"
    assert board.online(board.offline(board.Status("pt-1"))).state == "idle"


def test_a_status_built_from_an_event_with_a_person_carries_no_trace_of_them() -> None:
    reasons = (engine.Reason("cert", "op-7 holds no current PT certification", {"person": "op-7"}),)
    status = board.after_decision(
        board.Status("pt-1"), event=walked_in(), outcome="deny", reasons=reasons, revisions=REVISIONS
    )
    published = json.dumps(status.to_json())
    page = board.render_html(status)
    for personal in ("op-7", "sup-3", "BADGE-55817", "person", "badge"):
        assert personal not in published
        assert personal not in page


def test_the_board_page_is_large_self_refreshing_and_fetches_nothing_from_outside() -> None:
    status = board.after_decision(
        board.Status("pt-1"),
        event=walked_in(),
        outcome="deny",
        reasons=(engine.Reason("uv-a-daily", "x"),),
        revisions=REVISIONS,
    )
    page = board.render_html(status, refresh_seconds=3)
    assert '<meta http-equiv="refresh" content="3">' in page
    assert "BLOCKED" in page and "J-1001" in page and "uv-a-daily" in page
    assert "pt-penetrant @ 9f2c4e1a7b3d" in page and "font-size: 14vh" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_the_board_page_escapes_what_it_shows() -> None:
    status = board.Status("pt-1", job="<script>alert(1)</script>")
    assert "<script>alert" not in board.render_html(status)
    assert "&lt;script&gt;" in board.render_html(status)


def test_an_hour_later_the_time_shown_is_the_decisions() -> None:
    event = walked_in()
    later = f.Event(action="measure", at=AT + timedelta(hours=1), station="pt-1", job="J-1001")
    status = board.after_decision(board.Status("pt-1"), event=event, outcome="allow")
    status = board.after_decision(status, event=later, outcome="allow")
    assert "10:00" in board.render_html(status)
