"""The two custom resources, SmartContract and Station, as pydantic models (the edge: YAML and the API).

A ``SmartContract`` says which stations it governs (a label selector over
Station labels), which modules those stations must run, the typed rules, the
enforcement mode (``enforce`` or ``audit``), the window in which it is in
force and the standards (with revisions) it implements. A ``Station`` says
which node it binds to, its process and equipment; its status is written by
the operator. The CRDs in ``crds/`` are generated from these classes
(:mod:`smart.contracts.crds`), so the API server and ``smart contract
validate`` check the same shape.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from smart.contracts.rules import Model, Name, Rule

GROUP = "smart.aero"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Node labels the shop puts on station nodes (DESIGN "Deployment picture").
STATION_LABEL = f"{GROUP}/station"
PROCESS_LABEL = f"{GROUP}/process"
ROLE_LABEL = f"{GROUP}/role"

_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class LabelRequirement(Model):
    key: str = Field(min_length=1, max_length=253)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class LabelSelector(Model):
    """A Kubernetes label selector over Station labels; an empty selector selects no station."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        if not self.match_labels and not self.match_expressions:
            return False
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


class Standard(Model):
    """A standard (or customer flowdown) at a revision, in force from a date (DOMAIN: version every rule)."""

    id: Name = Field(description="Short id rules cite, e.g. e1417.")
    title: str = Field(min_length=1, max_length=200, description="e.g. 'ASTM E1417/E1417M'.")
    revision: str = Field(min_length=1, max_length=40, description="e.g. '21' or 'Rev 6'.")
    effective: date | None = Field(default=None, description="Date from which this revision applies.")
    flowdown: str | None = Field(default=None, max_length=200, description="Customer flowdown, if any.")


class Window(Model):
    """When the contract is in force; outside it a station fails closed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.notBefore) || !has(self.notAfter) || "
                    "timestamp(self.notBefore) < timestamp(self.notAfter)",
                    "message": "notBefore must be earlier than notAfter",
                }
            ]
        }
    )

    not_before: datetime | None = Field(default=None, description="In force from (RFC 3339).")
    not_after: datetime | None = Field(default=None, description="Expires at (RFC 3339).")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.not_before and self.not_after and self.not_before >= self.not_after:
            raise ValueError(f"notBefore {self.not_before} is not earlier than notAfter {self.not_after}")
        return self

    @field_validator("not_before", "not_after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a time needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
        return value


Approver = Literal["level-3", "quality-manager"]


class ApprovalPolicy(Model):
    """Who must approve a new revision of this contract before any station receives it.

    ``approvers`` lists the authorities a second person may sign with: ``level-3`` (a Level 3
    in a method the contract's credential rules name, NAS410's technical authority) and
    ``quality-manager``. ``emergency`` lets one Level 3 distribute a revision at once; a second
    person must countersign it within 24 hours or every page flags it.
    """

    approvers: list[Approver] = Field(
        default_factory=lambda: list[Approver](["level-3", "quality-manager"]),
        min_length=1,
        max_length=2,
        description="Authorities an approver may hold: level-3 (of the method) or quality-manager.",
    )
    emergency: bool = Field(
        default=False, description="One Level 3 may distribute; countersign within 24 h or it is flagged."
    )


class SmartContractSpec(Model):
    """What a contract governs and how."""

    description: str | None = Field(default=None, max_length=2000)
    station_selector: LabelSelector = Field(description="Stations (by their labels) this contract governs.")
    modules: list[Name] = Field(min_length=1, description="Station modules the governed stations run.")
    enforcement: Literal["enforce", "audit"] = Field(
        default="enforce", description="audit: record what would have been denied, but allow."
    )
    window: Window = Field(default_factory=Window, description="When the contract is in force.")
    timezone: str = Field(
        default="UTC", description="IANA zone for calendar intervals, e.g. America/Chicago."
    )
    standards: list[Standard] = Field(default_factory=list, description="Standards the rules cite.")
    rules: list[Rule] = Field(min_length=1, description="Typed rules; see docs/contracts.md.")
    approval: ApprovalPolicy | None = Field(
        default=None, description="Who approves a new revision (default: a Level 3 of the method or the QM)."
    )


class Condition(Model):
    """One condition, as Kubernetes conventions have it; its time moves only when its status does."""

    type: str = Field(max_length=64, description="Ready, Distributed, Degraded, NoStations or ModulesPlaced.")
    status: Literal["True", "False", "Unknown"]
    reason: str | None = Field(default=None, max_length=64, description="One CamelCase word.")
    message: str | None = Field(default=None, max_length=1024, description="What a person should know.")
    observed_generation: int | None = Field(default=None, description="The generation this was judged at.")
    last_transition_time: str | None = Field(
        default=None, max_length=64, description="When the status last changed (RFC 3339)."
    )


class SmartContractStatus(Model):
    """Written by the operator or the embedded driver; never by people."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    revisions: dict[str, str] = Field(
        default_factory=dict, description="Station → the bundle revision sent to it (SHA-256)."
    )
    revision: str | None = Field(default=None, description="Short form of the revisions, for kubectl.")
    stations: str | None = Field(
        default=None, description="'active/selected': stations reporting the revision in force, e.g. 3/3."
    )
    ready: str | None = Field(
        default=None, description="True when every selected station reports the revision active."
    )
    approval: str | None = Field(
        default=None,
        description="Approved, PendingApproval, CountersignDue or CountersignOverdue (two-person rule).",
    )
    pending_revision: str | None = Field(
        default=None, description="The contract revision waiting for approval (SHA-256 of the spec)."
    )
    approver: str | None = Field(default=None, description="Who must approve the pending revision.")
    conditions: list[Condition] = Field(default_factory=list)


class ObjectMeta(Model):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=63, pattern=_K8S_NAME)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


class SmartContract(Model):
    """A rule set for some stations, as a Kubernetes object."""

    api_version: Literal["smart.aero/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["SmartContract"]
    metadata: ObjectMeta
    spec: SmartContractSpec
    status: dict[str, Any] | None = None


class Equipment(Model):
    id: Name = Field(description="Asset id, e.g. UVA-LAMP-1.")
    kind: Name = Field(description="Equipment kind, e.g. uv-a-lamp, furnace, ammeter.")
    description: str | None = Field(default=None, max_length=200)
    attributes: dict[str, str] = Field(
        default_factory=dict, description="e.g. class: '2', instrumentation: B, finish: polished."
    )


class StationSpec(Model):
    """A station of the shop: the node it binds to, its process and equipment."""

    station_id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$", description="e.g. pt-1.")
    process: Name = Field(description="e.g. penetrant, magnetic-particle, heat-treat, shipping.")
    node_selector: dict[str, str] = Field(
        min_length=1, description="Node labels this station binds to, e.g. smart.aero/station: pt-1."
    )
    equipment: list[Equipment] = Field(default_factory=list)


class StationStatus(Model):
    """Written by the operator: what the hub sent the station and what its heartbeats report."""

    model_config = ConfigDict(extra="ignore")

    revisions: dict[str, str] = Field(
        default_factory=dict, description="Contract → the revision the hub distributed to this station."
    )
    active_revisions: dict[str, str] = Field(
        default_factory=dict, description="Contract → the revision the station reports in force."
    )
    active_revision: str | None = Field(
        default=None, description="Short form of the active revisions, for kubectl."
    )
    last_heartbeat: str | None = Field(default=None, description="When the operator last heard the station.")
    mirror_lag: int | None = Field(default=None, description="Messages the mirror is behind the hub.")
    ledger_lag: int | None = Field(default=None, description="Ledger entries not yet shipped to the hub.")
    online: bool | None = Field(default=None, description="Heard within the offline time.")
    conditions: list[Condition] = Field(default_factory=list)


class Station(Model):
    api_version: Literal["smart.aero/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Station"]
    metadata: ObjectMeta
    spec: StationSpec
    status: dict[str, Any] | None = None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.labels)


#: The SmartContract annotation holding its author's SMART-ID signature on the revision it carries.
AUTHOR_ANNOTATION = f"{GROUP}/author-signature"


class ContractApprovalSpec(Model):
    """A second person's approval of one contract revision, as a Kubernetes object (kubectl-visible)."""

    contract: str = Field(
        min_length=1, max_length=63, pattern=_K8S_NAME, description="The SmartContract's name."
    )
    revision: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The contract revision approved (SHA-256 of name and spec)."
    )
    credential: str = Field(
        min_length=16,
        max_length=4096,
        description="The approver's SMART-ID signature on that revision (a signed utility credential).",
    )


class ContractApprovalStatus(Model):
    """Written by the operator once it has verified the signature; never by people."""

    model_config = ConfigDict(extra="ignore")

    accepted: str | None = Field(
        default=None, description="True when the approval counted, False if refused."
    )
    approver: str | None = Field(default=None, description="The badge whose verified signature this is.")
    authority: str | None = Field(default=None, description="level-3 or quality-manager, as SMART-ID signed.")
    message: str | None = Field(
        default=None, max_length=1024, description="Why it was refused, or what it did."
    )


class ContractApproval(Model):
    api_version: Literal["smart.aero/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ContractApproval"]
    metadata: ObjectMeta
    spec: ContractApprovalSpec
    status: dict[str, Any] | None = None
