"""Reference contracts, the CRDs and the CEL rules in them, and ``smart contract validate|diff``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import cel
import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from smart.cli import contracts as contracts_cli
from smart.contracts import crds, manifests
from smart.contracts.models import SmartContract, Station

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "contracts"
STATIONS = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")


def documents() -> list[tuple[Path, dict[str, Any]]]:
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(REFERENCE.glob("*.yaml")):
        found.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def test_every_reference_manifest_validates_and_covers_the_six_stations() -> None:
    loaded = manifests.load([REFERENCE])
    stations = [i.manifest for i in loaded if isinstance(i.manifest, Station)]
    contracts = [i.manifest for i in loaded if isinstance(i.manifest, SmartContract)]
    assert sorted(s.spec.station_id for s in stations) == sorted(STATIONS)
    assert len(contracts) == 6
    for station in stations:
        assert any(c.spec.station_selector.matches(station.labels) for c in contracts), station.metadata.name


def test_every_reference_rule_cites_a_standard() -> None:
    for item in manifests.load([REFERENCE]):
        if isinstance(item.manifest, SmartContract):
            for rule in item.manifest.spec.rules:
                assert rule.cites, f"{item.file}: rule {rule.id} cites nothing"


def test_crds_directory_is_current() -> None:
    for name, text in crds.render().items():
        assert (ROOT / "crds" / name).read_text() == text, f"crds/{name} is stale: run `smart crds`"


def _crd(kind: str) -> dict[str, Any]:
    return crds.smartcontract_crd() if kind == "SmartContract" else crds.station_crd()


def _schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = _crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _structural_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    problems = []
    for banned in ("$ref", "oneOf", "anyOf", "allOf", "const", "$defs", "definitions"):
        if banned in schema:
            problems.append(f"{path}: {banned}")
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: properties with additionalProperties")
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        problems.append(f"{path}: exclusiveMinimum must be a boolean in OpenAPI v3.0")
    for name, sub in schema.get("properties", {}).items():
        problems.extend(_structural_problems(sub, f"{path}.{name}"))
    if isinstance(schema.get("items"), dict):
        problems.extend(_structural_problems(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        problems.extend(_structural_problems(schema["additionalProperties"], f"{path}{{}}"))
    return problems


@pytest.mark.parametrize("kind", ["SmartContract", "Station"])
def test_crd_is_valid_for_kubernetes_and_structural(kind: str) -> None:
    crd = _crd(kind)
    kubernetes_validate.validate(crd, "1.30", strict=True)
    assert _structural_problems(_schema(kind)) == []
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["smart"]
    assert crd["spec"]["names"]["shortNames"] == ["smc" if kind == "SmartContract" else "sst"]
    assert _schema(kind)["properties"]["status"]["properties"]  # typed: see tests/contracts/test_crds.py
    assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Revision", "Age"}


def cel_violations(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Evaluate every x-kubernetes-validations rule on the value it guards, as the API server does."""
    found = []
    for rule in schema.get("x-kubernetes-validations", []):
        if not cel.evaluate(rule["rule"], {"self": value}):
            found.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")  # as the API server
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found.extend(cel_violations(sub, value[name], f"{path}.{name}"))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found.extend(cel_violations(schema["items"], item, f"{path}[{i}]"))
    return found


def test_every_reference_manifest_passes_the_crd_schema_and_its_cel_rules() -> None:
    for path, doc in documents():
        schema = _schema(doc["kind"])
        jsonschema.Draft4Validator(schema).validate(doc)
        assert cel_violations(schema, doc) == [], path


def _penetrant() -> dict[str, Any]:
    return next(doc for _, doc in documents() if doc["metadata"]["name"] == "penetrant")


def _rule(doc: dict[str, Any], rule_id: str) -> dict[str, Any]:
    rule: dict[str, Any] = next(r for r in doc["spec"]["rules"] if r["id"] == rule_id)
    return rule


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda d: _rule(d, "pt-ambient-light").update(limits={"min": 5, "max": 2}),
            "limits.min must be less",
        ),
        (lambda d: _rule(d, "pt-ambient-light").update(unit="candles"), "unknown unit"),
        (
            lambda d: d["spec"]["window"].update(notBefore="2028-06-01T00:00:00Z"),
            "notBefore must be earlier than notAfter",
        ),
        (
            lambda d: _rule(d, "pt-penetrant-dwell")["bands"][0].update(above=60),
            "a band has one lower edge",
        ),
        (lambda d: _rule(d, "pt-penetrant-dwell").update(temperatureUnit="mm"), "temperatureUnit must be"),
        (lambda d: _rule(d, "pt-uva-checked-today").pop("every"), "].every: required for a check rule"),
        (
            lambda d: _rule(d, "pt-uva-checked-today").update(steps=["a", "b"]),
            "a check rule has only its own",
        ),
    ],
)
def test_manifest_breaking_a_cel_rule_is_caught_by_that_rule(breakage: Any, message: str) -> None:
    doc = copy.deepcopy(_penetrant())
    breakage(doc)
    violations = cel_violations(_schema("SmartContract"), doc)
    assert any(message in v for v in violations), violations
    with pytest.raises(manifests.ManifestsInvalid):  # and the offline validator agrees
        _load_one(doc)


def _load_one(doc: dict[str, Any]) -> None:
    _, errors = manifests.load_text(yaml.safe_dump(doc, allow_unicode=True), file="x.yaml")
    if errors:
        raise manifests.ManifestsInvalid(errors)


BROKEN = """\
apiVersion: smart.aero/v1alpha1
kind: SmartContract
metadata:
  name: broken
spec:
  stationSelector:
    matchLabels: {smart.aero/process: penetrant}
  modules: [qa, maintenance]
  rules:
    - kind: check
      id: tam
      check: tam-panel
      every: 1 day
    - kind: measurement
      id: uva
      quantity: uv-a-intensity
      unit: µW/cm²
      limits: {min: 1000, max: high}
"""


def test_validate_names_file_line_path_and_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = CliRunner().invoke(contracts_cli.contract_app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:18: spec.rules[1].limits.max:" in result.output
    assert "expected a number" in result.output


def test_validate_reports_semantic_errors_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "modules.yaml"
    path.write_text(BROKEN.replace("max: high", "max: 2000").replace("[qa, maintenance]", "[qa]"))
    result = CliRunner().invoke(contracts_cli.contract_app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:10: spec.rules[0]: a check rule is enforced by module 'maintenance'" in result.output


def test_validate_accepts_the_reference_contracts() -> None:
    result = CliRunner().invoke(contracts_cli.contract_app, ["validate", str(REFERENCE)])
    assert result.exit_code == 0, result.output
    assert "SmartContract penetrant is valid" in result.output


def test_diff_names_the_changed_limit_and_added_rule(tmp_path: Path) -> None:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    doc = _penetrant()
    old.write_text(yaml.safe_dump(doc, allow_unicode=True))
    changed = copy.deepcopy(doc)
    _rule(changed, "pt-uva-intensity")["limits"]["min"] = 1200
    changed["spec"]["rules"].append({"kind": "ppe", "id": "pt-face-shield", "required": ["face-shield"]})
    new.write_text(yaml.safe_dump(changed, allow_unicode=True))
    result = CliRunner().invoke(contracts_cli.contract_app, ["diff", str(old), str(new)])
    assert result.exit_code == 1
    assert "~ spec.rules.pt-uva-intensity.limits.min: 1000.0 → 1200.0" in result.output
    assert "+ rule pt-face-shield (ppe)" in result.output
    same = CliRunner().invoke(contracts_cli.contract_app, ["diff", str(old), str(old)])
    assert same.exit_code == 0 and "no changes" in same.output


def test_a_configmap_mounted_contracts_folder_loads_each_manifest_once(tmp_path: Path) -> None:
    """The hub's contracts on Kubernetes: a ConfigMap volume, each file a link into hidden copies."""
    from smart.contracts import manifests

    plain = Path(__file__).resolve().parents[2] / "contracts"
    mounted = tmp_path / "contracts"
    stamped = mounted / "..2026_12_03_12_00_00.000000001"
    stamped.mkdir(parents=True)
    for source in sorted(plain.glob("*.yaml")):
        (stamped / source.name).write_text(source.read_text())
    (mounted / "..data").symlink_to(stamped.name)
    for source in sorted(plain.glob("*.yaml")):
        (mounted / source.name).symlink_to(f"..data/{source.name}")

    def names(folder: Path) -> list[tuple[str, str]]:
        return sorted((m.manifest.kind, m.manifest.metadata.name) for m in manifests.load([folder]))

    assert names(mounted) == names(plain)
    assert len(names(plain)) == len(set(names(plain))) > 0
