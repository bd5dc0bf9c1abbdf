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
