"""The approver a hub takes from its settings: the operator's namespace, else the embedded floor."""

from __future__ import annotations

import functools
from pathlib import Path

from smart.embedded import approver
from smart.hub.compliance import approvers
from smart.testing.plugin import make_settings


def test_the_settings_name_the_operator_or_else_the_embedded_floor(tmp_path: Path) -> None:
    embedded = functools.partial(approver.on_embedded_floor, settings=make_settings(tmp_path))
    floor = approvers.for_settings(make_settings(tmp_path), embedded=embedded)
    cluster = approvers.for_settings(
        make_settings(tmp_path, contract_approval_namespace="shop-floor"), embedded=embedded
    )
    assert floor is embedded
    assert approvers.for_settings(make_settings(tmp_path)) is approvers.no_floor_here
    assert isinstance(cluster, functools.partial) and cluster.func is approvers.on_kubernetes
    assert cluster.keywords == {"namespace": "shop-floor"}
