"""The hub's NCR figure: every station named, 0 where none is open (a station without NCRs is not absent)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from smart.hub import metrics


def test_ncrs_open_names_every_station_with_zero_where_none_is_open() -> None:
    text = metrics.ncrs_open_text(["pt-1", "sr-1"], {"pt-1": 2}).decode()
    (family,) = text_string_to_metric_families(text)
    assert family.name == "smart_hub_ncrs_open"
    assert {s.labels["station"]: s.value for s in family.samples} == {"pt-1": 2.0, "sr-1": 0.0}


def test_witness_outcomes_are_counted_by_kind_not_by_their_reason_text() -> None:
    assert metrics.witness_outcome("refused: the station cosigned size 9; the hub's is 7") == "refused"
    assert metrics.witness_outcome("bad cosignature: wrong key") == "bad_cosignature"
    assert metrics.witness_outcome("cosigned") == "cosigned"
