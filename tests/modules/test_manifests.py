"""Module manifests: every folder's manifest loads, and together they enforce every rule kind once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smart.contracts import catalog, rules
from smart.contracts.models import ROLE_LABEL
from smart.modules import framework

GOOD = """\
name: spare-module
summary: A module for the test.
ruleKinds: [lot]
subjects: [use]
hardware: [camera]
stationLabels: {smart.aero/role: shipping}
resources:
  requests: {cpu: 10m, memory: 32Mi}
  limits: {memory: 64Mi}
"""


def manifest_in(root: Path, folder: str, text: str) -> Path:
    path = root / folder / "manifest.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_every_module_folder_has_a_manifest_that_loads() -> None:
    folders = sorted(
        p.name for p in framework.MODULES_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )
    loaded = framework.load_manifests()
    assert sorted(name.replace("-", "_") for name in loaded) == folders
    assert len(loaded) == 15
    for manifest in loaded.values():
        assert manifest.summary and manifest.subjects, manifest.name
        assert manifest.requests.keys() >= {"cpu", "memory"} and "memory" in manifest.limits, manifest.name


def test_the_catalog_is_the_folders_manifests() -> None:
    assert dict(catalog.MODULES) == dict(framework.load_manifests())
    assert catalog.ModuleManifest is framework.ModuleManifest


def test_every_rule_kind_is_enforced_by_exactly_the_module_its_rule_names() -> None:
    listed: dict[str, list[str]] = {}
    for manifest in catalog.MODULES.values():
        for kind in manifest.rule_kinds:
            listed.setdefault(kind, []).append(manifest.name)
    assert sorted(listed) == sorted(rules.RULE_KINDS), "manifests list unknown kinds or miss some"
    for kind, cls in rules.RULE_KINDS.items():
        assert listed[kind] == [cls.module], (
            f"rule kind {kind} is enforced by {cls.module}, manifests say {listed[kind]}"
        )


def test_logistics_may_run_only_on_a_station_labelled_for_shipping() -> None:
    logistics = catalog.MODULES["logistics"]
    assert logistics.may_run_on({ROLE_LABEL: "shipping", "smart.aero/station": "sr-1"})
    assert not logistics.may_run_on({ROLE_LABEL: "inspection"})
    assert not logistics.may_run_on({})
    others = [m for m in catalog.MODULES.values() if m.name != "logistics"]
    assert all(m.may_run_on({ROLE_LABEL: "inspection"}) for m in others)


def test_hardware_is_declared_by_the_modules_that_drive_it() -> None:
    hardware = {name: m.hardware for name, m in catalog.MODULES.items() if m.hardware}
    assert hardware == {
        "vision": ("camera",),
        "safety": ("gpio-estop", "gpio-interlock"),
        "alert-broadcast": ("gpio-stacklight", "gpio-buzzer"),
        "node-query": ("microphone", "speaker"),
    }


def test_a_good_manifest_in_its_folder_reads_field_by_field(tmp_path: Path) -> None:
    manifest = framework.read_manifest(manifest_in(tmp_path, "spare_module", GOOD))
    assert manifest.name == "spare-module"
    assert manifest.rule_kinds == ("lot",) and manifest.hardware == ("camera",)
    assert dict(manifest.station_labels) == {ROLE_LABEL: "shipping"}
    assert dict(manifest.requests) == {"cpu": "10m", "memory": "32Mi"}
    assert dict(manifest.limits) == {"memory": "64Mi"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD + "sidecar: true\n", "sidecar"),
        (GOOD.replace("name: spare-module\n", ""), "name"),
        (GOOD.replace("name: spare-module", "name: other-module"), "name"),
        (GOOD.replace("summary: A module for the test.", "summary: 7"), "summary"),
        (GOOD.replace("ruleKinds: [lot]", "ruleKinds: lot"), "ruleKinds"),
        (GOOD.replace("subjects: [use]", "subjects: [use, 3]"), "subjects"),
        (GOOD.replace("hardware: [camera]", "hardware: {camera: yes}"), "hardware"),
        (
            GOOD.replace("stationLabels: {smart.aero/role: shipping}", "stationLabels: [shipping]"),
            "stationLabels",
        ),
        (GOOD.replace("limits: {memory: 64Mi}", "limits: {memory: 64}"), "resources.limits"),
        (
            GOOD.replace("  requests: {cpu: 10m, memory: 32Mi}\n  limits: {memory: 64Mi}\n", " big\n"),
            "resources",
        ),
    ],
    ids=[
        "unknown-field",
        "missing-name",
        "name-not-folder",
        "summary-not-text",
        "rule-kinds-not-list",
        "subject-not-text",
        "hardware-not-list",
        "labels-not-mapping",
        "limit-not-text",
        "resources-not-mapping",
    ],
)
def test_a_bad_manifest_is_refused_naming_its_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = manifest_in(tmp_path, "spare_module", text)
    with pytest.raises(framework.ManifestError) as refused:
        framework.read_manifest(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert field in message.removeprefix(f"{path}: ")
    with pytest.raises(framework.ManifestError):
        framework.load_manifests(tmp_path)


def test_a_manifest_that_is_not_yaml_or_not_a_mapping_is_refused(tmp_path: Path) -> None:
    broken = manifest_in(tmp_path, "broken", "name: [unclosed\n")
    with pytest.raises(framework.ManifestError, match=re.escape(str(broken))):
        framework.read_manifest(broken)
    listed = manifest_in(tmp_path, "listed", "- name: listed\n")
    with pytest.raises(framework.ManifestError, match="expected a mapping"):
        framework.read_manifest(listed)


def test_every_station_is_false_unless_the_manifest_says_true(tmp_path: Path) -> None:
    assert framework.read_manifest(manifest_in(tmp_path, "spare_module", GOOD)).every_station is False
    on = manifest_in(tmp_path / "on", "spare_module", GOOD + "everyStation: true\n")
    assert framework.read_manifest(on).every_station is True


@pytest.mark.parametrize("value", ['"yes"', "1", "[true]", "null"], ids=["text", "number", "list", "null"])
def test_every_station_that_is_not_true_or_false_is_refused(tmp_path: Path, value: str) -> None:
    path = manifest_in(tmp_path, "spare_module", GOOD + f"everyStation: {value}\n")
    with pytest.raises(framework.ManifestError) as refused:
        framework.read_manifest(path)
    assert str(refused.value).startswith(f"{path}: everyStation: expected true or false")


def test_the_stations_own_infrastructure_runs_on_every_station_and_nothing_that_enforces_rules_does() -> None:
    every = {name for name, m in catalog.MODULES.items() if m.every_station}
    assert every == {
        "policy-node-storage",
        "handoff",
        "vision",
        "node-query",
        "alert-broadcast",
        "info-broadcast",
    }
    assert all(
        not catalog.MODULES[name].rule_kinds and not catalog.MODULES[name].station_labels for name in every
    )
