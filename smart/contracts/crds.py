"""CustomResourceDefinitions for SmartContract, Station and ContractApproval, generated from the models.

``smart crds`` writes them to ``crds/``; a test fails when the files there
differ from what this module generates, so the API server and ``smart
contract validate`` never drift apart. The models' JSON Schema is made
structural as Kubernetes requires: references inlined, ``Optional`` turned
into an absent field, the discriminated union of rule kinds flattened into
one object whose ``kind`` is an enum and whose per-kind required fields
become CEL ``x-kubernetes-validations``; every list and string gets a bound
so the API server can estimate the cost of the CEL rules.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from smart.contracts.models import (
    GROUP,
    VERSION,
    ContractApprovalSpec,
    ContractApprovalStatus,
    SmartContractSpec,
    SmartContractStatus,
    StationSpec,
    StationStatus,
)

#: ``kubectl get smc`` / ``kubectl get sst``: short names no built-in kind or common CRD uses
#: (``sc`` is StorageClass, ``st`` too close to it to be safe).
SMARTCONTRACT_SHORT = "smc"
STATION_SHORT = "sst"
CONTRACTAPPROVAL_SHORT = "sca"

MAX_ITEMS = 256
MAX_LENGTH = 1024

_DROP = {"title", "default", "examples", "discriminator"}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = copy.deepcopy(defs[schema["$ref"].split("/")[-1]])
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        target.update(extra)
        return _inline(target, defs)
    return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}


def _merge_union(variants: list[dict[str, Any]], description: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    validations: list[dict[str, str]] = []
    tags: list[str] = []
    required_everywhere: set[str] | None = None
    for variant in variants:
        tag = variant["properties"]["kind"].get("const") or variant["properties"]["kind"]["enum"][0]
        tags.append(tag)
        required = set(variant.get("required", [])) | {"kind"}
        required_everywhere = required if required_everywhere is None else required_everywhere & required
        for name, prop in variant["properties"].items():
            if name == "kind":
                continue
            prop = _structural(prop)
            if name in properties and properties[name].get("type") != prop.get("type"):
                raise ValueError(f"rule field {name!r} has different types across rule kinds")
            properties.setdefault(name, prop)
        validations.extend(variant.get("x-kubernetes-validations", []))
        for name in sorted(required - {"kind", "id"}):  # one rule per field, so the error names it
            validations.append(
                {
                    "rule": f"self.kind != '{tag}' || has(self.{name})",
                    "message": f"required for a {tag} rule",
                    "fieldPath": f".{name}",
                    "reason": "FieldValueRequired",
                }
            )
        allowed = sorted(set(variant["properties"]) - {"kind"})
        validations.append(_only_fields_rule(tag, allowed, variants))
    properties["kind"] = {"type": "string", "enum": tags, "description": "The rule kind."}
    merged: dict[str, Any] = {
        "type": "object",
        "properties": dict(sorted(properties.items())),
        "required": sorted(required_everywhere or {"kind"}),
        "x-kubernetes-validations": [v for v in validations if v],
    }
    if description:
        merged["description"] = description
    return merged


def _only_fields_rule(tag: str, allowed: list[str], variants: list[dict[str, Any]]) -> dict[str, str]:
    every = sorted({name for v in variants for name in v["properties"]} - {"kind"})
    foreign = [name for name in every if name not in allowed]
    if not foreign:
        return {}
    condition = " && ".join(f"!has(self.{name})" for name in foreign)
    return {
        "rule": f"self.kind != '{tag}' || ({condition})",
        "message": f"a {tag} rule has only its own fields",
    }


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    schema = {k: v for k, v in schema.items() if k not in _DROP}
    if "anyOf" in schema:
        options = [o for o in schema.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot make a structural schema of anyOf {options}")
        merged = dict(options[0])
        merged.update(schema)
        return _structural(merged)
    if "oneOf" in schema:
        return _merge_union(schema["oneOf"], schema.get("description"))
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        schema["minimum"], schema["exclusiveMinimum"] = schema["exclusiveMinimum"], True
    kind = schema.get("type")
    if kind == "object":
        if "properties" in schema:
            schema.pop("additionalProperties", None)
            schema["properties"] = {name: _structural(prop) for name, prop in schema["properties"].items()}
        elif isinstance(schema.get("additionalProperties"), dict):
            schema["additionalProperties"] = _structural(schema["additionalProperties"])
            schema.setdefault("maxProperties", MAX_ITEMS)
    elif kind == "array":
        schema["items"] = _structural(schema["items"])
        schema.setdefault("maxItems", MAX_ITEMS)
    elif kind == "string" and "enum" not in schema and "format" not in schema:
        schema.setdefault("maxLength", MAX_LENGTH)
    return schema


def spec_schema(
    model: type[SmartContractSpec] | type[StationSpec] | type[ContractApprovalSpec],
) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    return _structural(_inline(raw, raw.get("$defs", {})))


def status_schema(
    model: type[SmartContractStatus] | type[StationStatus] | type[ContractApprovalStatus], description: str
) -> dict[str, Any]:
    """The status as the operator writes it, field by field, so ``kubectl explain …status`` explains it."""
    raw = model.model_json_schema(by_alias=True)
    schema = _structural(_inline(raw, raw.get("$defs", {})))
    schema["description"] = description
    return schema


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["smart"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "x-kubernetes-validations": [
                                {
                                    "rule": "!self.metadata.name.contains('.')",
                                    "message": "the name is a KV key token: no dots",
                                    "fieldPath": ".metadata.name",
                                }
                            ],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def smartcontract_crd() -> dict[str, Any]:
    return _crd(
        kind="SmartContract",
        plural="smartcontracts",
        short=SMARTCONTRACT_SHORT,
        spec=spec_schema(SmartContractSpec),
        status=status_schema(
            SmartContractStatus,
            "Written by the operator: the revision sent to each station, active/selected stations, "
            "conditions (Ready, Distributed, Degraded, NoStations, ModulesPlaced) with observedGeneration.",
        ),
        columns=[
            {"name": "Revision", "type": "string", "jsonPath": ".status.revision"},
            {
                "name": "Stations",
                "type": "string",
                "jsonPath": ".status.stations",
                "description": "active/selected",
            },
            {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
            {
                "name": "Approval",
                "type": "string",
                "jsonPath": ".status.approval",
                "description": "Approved, PendingApproval, CountersignDue or CountersignOverdue",
            },
            {
                "name": "Approver",
                "type": "string",
                "jsonPath": ".status.approver",
                "description": "who must approve (or countersign) the revision",
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        description="Rules for some stations of the shop: typed, versioned by content hash, signed.",
    )


def station_crd() -> dict[str, Any]:
    return _crd(
        kind="Station",
        plural="stations",
        short=STATION_SHORT,
        spec=spec_schema(StationSpec),
        status=status_schema(
            StationStatus,
            "Written by the operator: revisions sent, revisions active (heartbeats), last heartbeat, "
            "mirror and ledger lag, online.",
        ),
        columns=[
            {"name": "Station", "type": "string", "jsonPath": ".spec.stationId"},
            {"name": "Process", "type": "string", "jsonPath": ".spec.process"},
            {"name": "Revision", "type": "string", "jsonPath": ".status.activeRevision"},
            {"name": "Online", "type": "boolean", "jsonPath": ".status.online"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        description="A testing or processing station: the node it binds to, its process and equipment.",
    )


def contractapproval_crd() -> dict[str, Any]:
    crd = _crd(
        kind="ContractApproval",
        plural="contractapprovals",
        short=CONTRACTAPPROVAL_SHORT,
        spec=spec_schema(ContractApprovalSpec),
        status=status_schema(
            ContractApprovalStatus,
            "Written by the operator after verifying the SMART-ID signature: accepted or why not.",
        ),
        columns=[
            {"name": "Contract", "type": "string", "jsonPath": ".spec.contract"},
            {"name": "Revision", "type": "string", "jsonPath": ".spec.revision"},
            {"name": "Accepted", "type": "string", "jsonPath": ".status.accepted"},
            {"name": "Approver", "type": "string", "jsonPath": ".status.approver"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        description="A second person's signed approval of one SmartContract revision (two-person rule).",
    )
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf", "message": "an approval is signed once and never edited"}
    ]
    return crd


def render() -> dict[str, str]:
    """File name → YAML text, as written to ``crds/``."""
    header = "# Generated by `smart crds` from smart/contracts/models.py; do not edit.\n"
    return {
        f"{GROUP}_smartcontracts.yaml": header
        + yaml.safe_dump(smartcontract_crd(), sort_keys=False, allow_unicode=True),
        f"{GROUP}_stations.yaml": header + yaml.safe_dump(station_crd(), sort_keys=False, allow_unicode=True),
        f"{GROUP}_contractapprovals.yaml": header
        + yaml.safe_dump(contractapproval_crd(), sort_keys=False, allow_unicode=True),
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
