"""Entries are RFC 8785 canonical JSON, hashed verbatim and linked to their node's previous entry."""

from __future__ import annotations

import json
import struct

import orjson
import pytest
import rfc8785

from smart import ledger
from smart.ledger import entry as ledger_entry

# RFC 8785 §3.2.2 (the example "JSON data" and its canonical form).
RFC8785_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC8785_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

# RFC 8785 §3.2.3 (sorting of properties by UTF-16 code units).
RFC8785_SORT_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC8785_SORT_KEYS = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]

# RFC 8785 Appendix B: IEEE 754 doubles (as hex) and their canonical text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_canonical_json_matches_rfc8785_example() -> None:
    assert rfc8785.dumps(json.loads(RFC8785_INPUT)) == RFC8785_OUTPUT.encode()


def test_canonical_json_sorts_properties_as_rfc8785_says() -> None:
    out = rfc8785.dumps(json.loads(RFC8785_SORT_INPUT))
    assert list(json.loads(out)) == RFC8785_SORT_KEYS


@pytest.mark.parametrize(("ieee", "text"), RFC8785_NUMBERS)
def test_canonical_json_numbers_match_rfc8785_appendix_b(ieee: str, text: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(ieee))
    assert rfc8785.dumps(value) == text.encode()


def test_canonical_json_refuses_nan_and_infinity() -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(rfc8785.CanonicalizationError):
            rfc8785.dumps(bad)


def _gate_decision(**overrides: object) -> ledger.Entry:
    fields: dict[str, object] = {
        "node": "pt-1",
        "node_seq": 0,
        "prev": ledger.GENESIS,
        "kind": "gate.decision",
        "subject": "part:PN-1234/SN-55",
        "data": {"allow": True, "reasons": ["badge ok", "PT level 2 valid"], "dwell_min": 10.5},
        "actor": "person:jane",
        "contract": "rev-abc",
        "ts": "2026-11-28T04:15:59.123456Z",
    }
    fields.update(overrides)
    return ledger.Entry.create(**fields)  # type: ignore[arg-type]


def test_entry_bytes_are_canonical_and_hashed_verbatim() -> None:
    entry = _gate_decision()
    assert entry.raw == rfc8785.dumps(json.loads(entry.raw))
    assert entry.hash == ledger.entry_hash(entry.raw)
    assert json.loads(entry.raw)["prev"] == "0" * 64
    assert ledger.Entry.from_bytes(entry.raw) == entry


def test_entry_reads_back_its_chain_fields_from_the_canonical_tail() -> None:
    tricky = {"node": "mt-1", "node_seq": 7, "prev": "f" * 64, "nested": {"node": "x", "subject": "y"}}
    entry = _gate_decision(node_seq=41, prev=b"\x11" * 32, data=tricky, subject='say "node":"mt-1"')
    assert ledger_entry.chain_fields(entry.raw) == ("pt-1", 41, b"\x11" * 32)


def test_entry_refuses_non_canonical_bytes() -> None:
    entry = _gate_decision()
    spaced = json.dumps(json.loads(entry.raw), indent=1).encode()
    with pytest.raises(ledger.EntryError, match="not RFC 8785 canonical"):
        ledger.Entry.from_bytes(spaced)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"node": "PT 1"}, "node must be"),
        ({"node_seq": -1}, "node_seq must be"),
        ({"kind": "decision"}, "kind must be"),
        ({"actor": ""}, "actor must be"),
        ({"ts": "2026-11-28 04:15:59"}, "ts must be UTC"),
        ({"data": {"reading": float("nan")}}, "not canonical JSON"),
    ],
)
def test_entry_names_the_field_that_is_wrong(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ledger.EntryError, match=complaint):
        _gate_decision(**overrides)


def test_synthetic_entries_are_canonical_entries_linked_in_a_chain() -> None:
    from smart.keys import SigningKey
    from smart.ledger import synthetic

    batches = list(synthetic.fast_chain("pt-1", SigningKey.generate("pt-1"), 30, batch_size=7))
    entries = [e for b in batches for e in b.entries]
    assert [ledger.Entry.from_bytes(e.raw) for e in entries] == entries
    for batch in batches:
        batch.check()


def test_the_fast_encoder_agrees_with_rfc8785_wherever_it_is_used() -> None:
    import random

    rng = random.Random(8785)
    alphabet = [
        "a",
        "Z",
        "0",
        " ",
        '"',
        "\\",
        "/",
        "\n",
        "\t",
        "\x00",
        "\x1f",
        "\x7f",
        "é",
        "€",
        "\u2028",
        "😀",
        "דּ",
    ]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    def value(depth: int) -> object:
        pick = rng.randint(0, 7 if depth < 3 else 4)
        if pick == 0:
            return text()
        if pick == 1:
            return rng.choice([0, 1, -1, 2**53 - 1, -(2**53) + 1, 123456789])
        if pick == 2:
            return rng.choice([True, False, None])
        if pick == 3:
            return rng.choice([0.5, 1e30, -0.0, 333333333.33333329])
        if pick == 4:
            return "x"
        if pick in (5, 6):
            return {
                rng.choice(["b", "a", "é", "€", "😀", "\ufb33", "A", "aa"]) + text(): value(depth + 1)
                for _ in range(3)
            }
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    for _ in range(3000):
        sample = value(0)
        assert ledger_entry.canonical_json(sample) == rfc8785.dumps(sample)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b'{"a":1}', True),
        (b'{"a":100}', True),
        (b'{"a":1.5}', True),
        (b'{"a":0.1}', True),
        (b'{"a":"12:00:00.000000Z"}', True),
        (b'{"a":"\xc3\xa9"}', True),
        (b'{"a":-0}', False),
        (b'{"a":1e5}', False),
        (b'{"a":1.0E+2}', False),
        (b'{"a":[1,2.50]}', False),
        (b'{"a":12345678901234567}', False),
        (b'{"b":1,"a":2}', False),
        (b'{"a": 1}', False),
        (b'{"a":1,"a":1}', False),
        (b'{"a":"\\u00e9"}', False),
    ],
)
def test_only_rfc_8785_bytes_pass_the_canonical_check(raw: bytes, canonical: bool) -> None:
    assert (ledger_entry.not_canonical(raw, orjson.loads(raw)) is None) is canonical


def test_a_duplicated_key_is_named_as_such() -> None:
    raw = b'{"a":{"x":1},"data":{"outcome":"deny"},"data":{"outcome":"allow"}}'
    assert ledger_entry.not_canonical(raw, orjson.loads(raw)) == (
        "key 'data' appears twice in one object (readers would disagree on it)"
    )


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        (b'{"n":3}', True),
        (b'{"mm":1.5}', True),
        (b'{"mm":1.0}', False),
        (b'{"mm":1e16}', False),
        (b'{"big":90071992547409930}', False),
        (b'{"b":1,"a":2}', False),
    ],
)
def test_an_entry_with_numbers_in_its_data_is_judged_exactly(data: bytes, canonical: bool) -> None:
    made = ledger.Entry.create(
        node="pt-1", node_seq=0, prev=ledger.GENESIS, kind="qa.result", subject="s", data={"n": 3}, actor="a"
    )
    raw = made.raw.replace(b'"data":{"n":3}', b'"data":' + data)
    assert (ledger_entry.not_canonical(raw, orjson.loads(raw)) is None) is canonical
