"""What a kubectl user meets in the CRDs: short names of their own, an explained status, CEL naming fields."""

from __future__ import annotations

import copy
import gzip
import json
from importlib import resources
from typing import Any

import pytest

from smart.contracts import crds
from tests.contracts.test_manifests import _penetrant, _schema, cel_violations

# Short names of widely installed CRDs (cert-manager, Argo CD and Rollouts, Prometheus operator,
# Istio, Knative, Velero, Flux, Crossplane, Longhorn, Kyverno, KEDA, Strimzi, CloudNativePG, Gateway API).
COMMON_CRD_SHORT_NAMES = {
    "cert",
    "certs",
    "cr",
    "crs",
    "certreq",
    "certreqs",
    "ciss",
    "cis",
    "iss",
    "ord",
    "chal",
    "app",
    "apps",
    "appproj",
    "appprojs",
    "appset",
    "appsets",
    "ro",
    "rollout",
    "ar",
    "at",
    "aa",
    "smon",
    "pmon",
    "prom",
    "am",
    "promrule",
    "amcfg",
    "scrapecfg",
    "probe",
    "thanosruler",
    "vs",
    "gw",
    "dr",
    "se",
    "pa",
    "ra",
    "ap",
    "sidecar",
    "wle",
    "we",
    "ef",
    "telemetry",
    "ksvc",
    "kservice",
    "kcfg",
    "rt",
    "kroute",
    "rev",
    "kpa",
    "img",
    "bsl",
    "vsl",
    "backup",
    "restore",
    "schedule",
    "hr",
    "ks",
    "gitrepo",
    "helmrepo",
    "hc",
    "ocirepo",
    "xrd",
    "xrds",
    "comp",
    "pkg",
    "prov",
    "lhv",
    "lhe",
    "lhr",
    "lhn",
    "lhb",
    "cpol",
    "pol",
    "polr",
    "cpolr",
    "so",
    "sj",
    "ta",
    "cta",
    "k",
    "kt",
    "kc",
    "ku",
    "kmm2",
    "kb",
    "cluster",
    "pooler",
    "backups",
    "scheduledbackup",
    "gc",
    "gtw",
    "httproute",
    "grpcroute",
}


def builtin_short_names() -> set[str]:
    """Every short name the built-in kinds of Kubernetes have (kmock's copy of the discovery)."""
    path = resources.files("kmock") / "_internal" / "resources.json.gz"
    lists: list[dict[str, Any]] = json.loads(gzip.decompress(path.read_bytes()))
    return {short for group in lists for r in group["resources"] for short in r.get("shortNames", [])}


def test_short_names_collide_with_no_builtin_kind_or_common_crd() -> None:
    known = builtin_short_names()
    assert {"sc", "cm", "deploy", "ds", "po"} <= known  # the discovery list is the real one
    ours = {crds.SMARTCONTRACT_SHORT, crds.STATION_SHORT}
    assert ours == {"smc", "sst"}
    assert not ours & known, ours & known
    assert not ours & COMMON_CRD_SHORT_NAMES
    for crd in (crds.smartcontract_crd(), crds.station_crd()):
        names = crd["spec"]["names"]
        assert names["shortNames"][0] in ours and names["plural"] not in known


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("SmartContract", {"revisions", "stations", "ready", "conditions", "observedGeneration"}),
        ("Station", {"revisions", "activeRevisions", "online", "lastHeartbeat", "mirrorLag", "ledgerLag"}),
    ],
)
def test_status_has_a_schema_kubectl_explain_can_explain(kind: str, fields: set[str]) -> None:
    status = _schema(kind)["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["description"]
    assert fields <= set(status["properties"])
    for name in fields:  # `kubectl explain <kind>.status.<field>` prints a description
        assert status["properties"][name].get("description") or name == "conditions", name
    if kind == "SmartContract":
        condition = status["properties"]["conditions"]["items"]
        assert condition["required"] == ["type", "status"]
        assert condition["properties"]["lastTransitionTime"]["description"]


def test_a_missing_field_is_named_in_the_cel_error() -> None:
    doc = copy.deepcopy(_penetrant())
    credential = next(r for r in doc["spec"]["rules"] if r["kind"] == "credential")
    index = doc["spec"]["rules"].index(credential)
    credential.pop("method")
    violations = cel_violations(_schema("SmartContract"), doc)
    assert f".spec.rules[{index}].method: required for a credential rule" in violations, violations
    rules = _schema("SmartContract")["properties"]["spec"]["properties"]["rules"]["items"]
    required = [v for v in rules["x-kubernetes-validations"] if v.get("reason") == "FieldValueRequired"]
    assert required and all(v["fieldPath"].startswith(".") for v in required)
