"""The station's bus messages are read once, at the edge, and a bad one says which field is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smart.bus import messages
from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.decisions import StationDecision

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def request(**value: object) -> bytes:
    return json.dumps(value).encode()


def test_a_module_request_is_read_into_a_typed_event_and_its_body() -> None:
    event = f.Event(action="operate", at=AT, station="pt-1", person="op-7", lots=("PEN-2291",))
    read, body = messages.read_module_request(
        request(event=messages.plain(event), body={"check": "tam-panel"}), station="pt-1"
    )
    assert read == event and body == {"check": "tam-panel"}
    assert (
        messages.read_module_request(request(event=messages.plain(event), body=None), station="pt-1")[1] == {}
    )


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not json", "Invalid JSON"),
        (request(body={}), "event: Field required"),
        (request(event={"action": "operate", "station": "pt-1"}), "event: "),
        (request(event={"action": "operate", "at": AT.isoformat(), "station": "pt-1"}, body=[1]), "body"),
        (request(event={"action": "operate", "at": AT.isoformat(), "station": "mt-1"}), "for station mt-1"),
    ],
)
def test_an_unreadable_module_request_is_refused_naming_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(messages.MessageError, match=says):
        messages.read_module_request(data, station="pt-1")


def test_a_decision_and_its_reasons_read_back_as_they_were_sent() -> None:
    reason = engine.Reason("pt.uv-a", "UV-A 940 µW/cm² is below 1000", {"value": 940}, severity="deny")
    decision = StationDecision("pt-1", "deny", (reason,), {"penetrant": "1b3ca913"})
    again = StationDecision.from_json(json.loads(json.dumps(decision.to_json())))
    assert again.to_json() == decision.to_json() and not again.allowed
    with pytest.raises(ValueError, match="outcome 'maybe'"):
        StationDecision.from_json({**decision.to_json(), "outcome": "maybe"})


def test_a_module_reply_carries_its_ledger_entry_and_an_alert_notice_its_light() -> None:
    reply = json.loads(messages.module_reply({"module": "qa", "outcome": "allow"}, entry=41))
    assert reply == {
        "module": "qa",
        "outcome": "allow",
        "revisions": {},
        "reasons": [],
        "effects": {},
        "entry": 41,
    }
    notice = messages.read_alert_notice(request(change="raised", alert={"id": "a"}, light="red", buzzer=True))
    assert notice.light == "red" and notice.buzzer
    with pytest.raises(messages.MessageError, match="light"):
        messages.read_alert_notice(request(change="raised", light="blue", buzzer=False))


def test_a_module_reply_is_read_into_a_typed_answer_and_an_error_reply_is_no_answer() -> None:
    reason = engine.Reason("uv-a-intensity", "UV-A 940 below 1000", {"measured": 940.0}, severity="warn")
    sent = messages.module_reply(
        {
            "module": "qa",
            "outcome": "warn",
            "revisions": {"penetrant": "ab12"},
            "reasons": [reason.to_json()],
            "effects": {"ncrs": ["NCR-1"]},
        },
        entry=41,
    )
    answer = messages.read_module_reply(sent)
    assert (answer.module, answer.outcome, answer.entry) == ("qa", "warn", 41)
    assert answer.reasons == (reason,) and answer.refusals() == () and answer.allowed
    assert answer.effects["ncrs"] == ["NCR-1"] and answer.to_json()["entry"] == 41
    with pytest.raises(messages.MessageError, match="not recorded"):
        messages.read_module_reply(messages.module_error("qa.measure: not recorded"))
    with pytest.raises(messages.MessageError, match="outcome"):
        messages.read_module_reply(request(module="qa", outcome="maybe"))
    with pytest.raises(messages.MessageError, match="severity"):
        messages.read_module_reply(
            request(module="qa", outcome="deny", reasons=[{"rule": "r", "message": "m", "severity": "x"}])
        )


def test_a_heartbeat_is_typed_and_speaks_only_for_its_own_station() -> None:
    status = {
        "station": "pt-1",
        "revisions": {"penetrant": "ab" * 32},
        "ledger_size": 12,
        "shipped_seq": 9,
        "ledger_lag": 2,
        "ledger_blocked": None,
        "ledger_alarms": [
            {"key": "fork", "kind": "fork", "message": "the hub forked", "since": 1.0},
            {"key": "ledger-shipping", "kind": "shipping", "message": "refused", "since": 2.0},
        ],
        "mirror_lag": 0,
        "ts": 1.5,
    }
    heard = messages.read_heartbeat("station.pt-1.heartbeat", messages.heartbeat_bytes(status))
    assert heard.revisions == {"penetrant": "ab" * 32} and heard.ledger_lag == 2
    assert heard.trouble() == (None, ["the hub forked"])
    with pytest.raises(messages.MessageError, match=r"pt-1 on station\.pt-2\.heartbeat"):
        messages.read_heartbeat("station.pt-2.heartbeat", messages.heartbeat_bytes(status))
    with pytest.raises(messages.MessageError, match="ledger_lag"):
        messages.read_heartbeat("station.pt-1.heartbeat", request(station="pt-1", ledger_lag=-3))
    with pytest.raises(ValueError, match="station"):
        messages.heartbeat_bytes({"revisions": {}})
