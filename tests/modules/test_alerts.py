"""Alerts: raised, repeated, escalated, acknowledged, cleared; the stack light and buzzer they lead to."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from smart.modules.alert_broadcast import alerts

AT = datetime(2026, 3, 10, 6, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def tam_failed(board: alerts.Board, at: datetime = AT) -> tuple[alerts.Board, alerts.Alert, alerts.Change]:
    return alerts.raise_alert(
        board,
        severity="critical",
        source="maintenance",
        message="TAM panel check failed: line locked until a rerun passes",
        at=at,
        by="maintenance",
        key="tam-panel",
    )


def lamp_low(board: alerts.Board) -> alerts.Board:
    board, _, _ = alerts.raise_alert(
        board, severity="warning", source="qa", message="UV-A trending down", at=AT, by="qa"
    )
    return board


def test_a_station_with_no_gate_decision_shows_amber_and_stays_quiet() -> None:
    board = alerts.Board()
    assert (board.light, board.buzzer) == ("amber", False)


def test_the_gate_alone_sets_green_amber_red() -> None:
    board = alerts.Board()
    assert alerts.gate(board, "allow", at=AT).light == "green"
    assert alerts.gate(board, "warn", at=AT).light == "amber"
    assert alerts.gate(board, "deny", at=AT).light == "red"


def test_an_open_warning_turns_an_allowed_station_amber_and_info_changes_nothing() -> None:
    allowed = alerts.gate(alerts.Board(), "allow", at=AT)
    assert lamp_low(allowed).light == "amber"
    informed, _, _ = alerts.raise_alert(
        allowed, severity="info", source="handoff", message="job record sent", at=AT, by="handoff"
    )
    assert (informed.light, informed.buzzer) == ("green", False)


def test_a_critical_alert_is_red_with_the_buzzer_until_acknowledged_and_red_until_cleared() -> None:
    board, alert, change = tam_failed(alerts.gate(alerts.Board(), "allow", at=AT))
    assert change == "raised" and (board.light, board.buzzer) == ("red", True)
    board, seen = alerts.acknowledge(board, alert.id, by="op-7", at=AT + MINUTE)
    assert (seen.acknowledged_by, seen.acknowledged_at) == ("op-7", AT + MINUTE)
    assert (board.light, board.buzzer) == ("red", False)
    board, gone = alerts.clear(board, alert.id)
    assert gone.id == "tam-panel" and board.alerts == {}
    assert (board.light, board.buzzer) == ("green", False)


def test_a_deny_is_red_even_without_alerts() -> None:
    board = lamp_low(alerts.gate(alerts.Board(), "deny", at=AT))
    assert (board.light, board.buzzer) == ("red", False)


def test_a_repeat_is_counted_not_raised_again_and_does_not_re_sound_the_buzzer() -> None:
    board, alert, _ = tam_failed(alerts.Board())
    board, _ = alerts.acknowledge(board, alert.id, by="op-7", at=AT + MINUTE)
    board, again, change = tam_failed(board, AT + 2 * MINUTE)
    assert change == "repeated" and again.count == 2 and again.last_raised_at == AT + 2 * MINUTE
    assert again.raised_at == AT and again.acknowledged
    assert len(board.alerts) == 1 and not board.buzzer


def test_without_a_key_the_source_and_message_make_the_repeat() -> None:
    board = lamp_low(lamp_low(alerts.Board()))
    assert [a.count for a in board.alerts.values()] == [2]
    assert next(iter(board.alerts)) == "qa:UV-A trending down"


def test_a_repeat_at_higher_severity_escalates_and_needs_a_new_acknowledgement() -> None:
    board, alert, _ = alerts.raise_alert(
        alerts.Board(), severity="warning", source="qa", message="bath low", at=AT, by="qa", key="bath"
    )
    board, _ = alerts.acknowledge(board, "bath", by="op-7", at=AT)
    board, alert, change = alerts.raise_alert(
        board, severity="critical", source="qa", message="bath out", at=AT + MINUTE, by="qa", key="bath"
    )
    assert change == "escalated" and alert.severity == "critical" and not alert.acknowledged
    assert board.buzzer
    board, alert, change = alerts.raise_alert(
        board, severity="info", source="qa", message="bath", at=AT + 2 * MINUTE, by="qa", key="bath"
    )
    assert change == "repeated" and alert.severity == "critical"


def test_acknowledging_twice_keeps_the_first_person_and_time() -> None:
    board, alert, _ = tam_failed(alerts.Board())
    board, _ = alerts.acknowledge(board, alert.id, by="op-7", at=AT + MINUTE)
    board, again = alerts.acknowledge(board, alert.id, by="op-8", at=AT + 2 * MINUTE)
    assert (again.acknowledged_by, again.acknowledged_at) == ("op-7", AT + MINUTE)


def test_bad_requests_are_refused_with_a_reason() -> None:
    with pytest.raises(alerts.AlertError, match="not one of info, warning, critical"):
        alerts.severity("panic")
    with pytest.raises(alerts.AlertError, match="no open alert 'nope'"):
        alerts.acknowledge(alerts.Board(), "nope", by="op-7", at=AT)
    with pytest.raises(alerts.AlertError, match="needs the person"):
        alerts.acknowledge(tam_failed(alerts.Board())[0], "tam-panel", by="", at=AT)
    with pytest.raises(alerts.AlertError, match="no open alert"):
        alerts.clear(alerts.Board(), "nope")


def test_a_board_round_trips_through_json_with_its_light() -> None:
    board = lamp_low(tam_failed(alerts.gate(alerts.Board(), "warn", at=AT))[0])
    board, _ = alerts.acknowledge(board, "tam-panel", by="op-7", at=AT + MINUTE)
    raw = json.loads(json.dumps(board.to_json()))
    assert raw["light"] == "red" and raw["buzzer"] is False
    assert alerts.Board.from_json(raw) == board
