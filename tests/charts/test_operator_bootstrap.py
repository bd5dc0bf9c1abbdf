"""The chart's ``operator.contractBootstrap``: the operator's ``SMART_CONTRACT_BOOTSTRAP``, off unless set.

Rendered offline (Helm's own code); the value the Deployment carries is read back through the
operator's own settings, so a chart that rendered a string the settings would not take as a
boolean (or took the wrong way) fails here, not on a new cluster.
"""

from __future__ import annotations

import helm_python as helm
import pytest

from smart.settings import Settings
from tests.charts.conftest import CHART, NAMESPACE, env_of, find, render


def _operator_env(values: dict[str, object] | None = None) -> dict[str, object]:
    operator = find(render(values), "Deployment", "smart-operator")
    return env_of(operator["spec"]["template"]["spec"]["containers"][0])


def test_the_operator_bootstraps_only_when_the_value_says_so() -> None:
    default = _operator_env()["SMART_CONTRACT_BOOTSTRAP"]
    seeding = _operator_env({"operator": {"contractBootstrap": True}})["SMART_CONTRACT_BOOTSTRAP"]
    assert (default, seeding) == ("false", "true")
    # What the operator's settings make of each (the env var it reads, as the pod gives it).
    assert Settings.model_validate({"contract_bootstrap": default}).contract_bootstrap is False
    assert Settings.model_validate({"contract_bootstrap": seeding}).contract_bootstrap is True


def test_the_schema_refuses_a_bootstrap_value_that_is_not_a_boolean() -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.render(
            {"operator": {"contractBootstrap": "yes"}}, name="smart", namespace=NAMESPACE, is_install=True
        )
    assert "at '/operator/contractBootstrap'" in str(refused.value)
