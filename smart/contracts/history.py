"""What was in force when: a contract's revisions with their people and diffs, and each station's activations.

PolicyCentral's two questions. *History*: every revision of a contract, who wrote and who approved
it, when, what changed against the one before (rules matched by id), and over which periods each
station had it in force. *In force at*: which revision of each contract judged a station at a
moment ("what rules judged pt-1 at 10:00 on 30 Nov").

The periods come only from the stations' own ledger entries (``contract.activated`` and
``contract.retired``, which the hub log holds once shipped): what a station enforced is what it
recorded, not what the hub meant to send. A bundle revision (one per station) is tied to the
contract revision people approved by the ``contract.deployed`` entries, whose data names both.
The station answers the same question from its own store (policy-node-storage, verb ``at``); a
test shows the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from smart import ledger

if TYPE_CHECKING:  # the approval gate loads the access pillar (joserfc), which a module process lacks
    from smart.contracts import approval

ACTIVATION_KINDS = ("contract.activated", "contract.retired")


class HistoryError(ValueError):
    """A question that cannot be answered as asked (an unknown contract, a malformed time)."""


def parse_time(text: str, *, field_name: str = "time") -> datetime:
    """An RFC 3339 time with its offset; a clear error naming the field otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise HistoryError(
            f"{field_name}: {text!r} is not a time (expected e.g. 2026-11-30T10:00:00Z)"
        ) from err
    if moment.tzinfo is None:
        raise HistoryError(f"{field_name}: {text!r} has no UTC offset (expected e.g. 2026-11-30T10:00:00Z)")
    return moment


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Lines saying what changed between two specs (plain JSON), rules matched by id.

    ``~ path: a → b`` for a changed value, ``+ rule id (kind)`` / ``- rule id (kind)`` for a rule
    added or removed.
    """

    def shape(spec: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(dict(spec)))
        body["rules"] = {rule["id"]: rule for rule in body.get("rules", [])}
        return body

    a, b = shape(old), shape(new)
    lines: list[str] = []
    for rule_id in a["rules"].keys() - b["rules"].keys():
        lines.append(f"- rule {rule_id} ({a['rules'][rule_id]['kind']})")
    for rule_id in b["rules"].keys() - a["rules"].keys():
        lines.append(f"+ rule {rule_id} ({b['rules'][rule_id]['kind']})")
    flat_a, flat_b = _flatten(a, "spec"), _flatten(b, "spec")
    for path in sorted(flat_a.keys() | flat_b.keys()):
        rule_id = path.split(".")[2] if path.startswith("spec.rules.") else None
        if rule_id is not None and (rule_id not in a["rules"] or rule_id not in b["rules"]):
            continue
        if flat_a.get(path) != flat_b.get(path):
            lines.append(f"~ {path}: {json.dumps(flat_a.get(path))} → {json.dumps(flat_b.get(path))}")
    return sorted(lines, key=lambda line: line[2:])


@dataclass(frozen=True, slots=True)
class Activation:
    """A station began (or, ``revision`` None, stopped) enforcing a contract revision at ``at``."""

    station: str
    contract: str
    revision: str | None
    at: datetime


def activations(entries: Iterable[ledger.Entry]) -> list[Activation]:
    """The stations' activations and retirements in the entries, oldest first."""
    found = []
    for entry in entries:
        if entry.kind not in ACTIVATION_KINDS:
            continue
        contract = entry.data.get("contract")
        if not isinstance(contract, str):
            continue
        revision = entry.data.get("revision") if entry.kind == "contract.activated" else None
        found.append(Activation(entry.node, contract, revision, parse_time(entry.ts)))
    return sorted(found, key=lambda a: a.at)


@dataclass(frozen=True, slots=True)
class InForce:
    """One contract's revision in force at a station at a moment, since when."""

    contract: str
    revision: str
    since: datetime
    #: The ids of the rules that revision holds, where known (the hub: from ``contract.deployed``).
    rules: tuple[str, ...] | None = None

    def json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "contract": self.contract,
            "revision": self.revision,
            "since": self.since.isoformat(),
        }
        if self.rules is not None:
            shown["rules"] = list(self.rules)
        return shown


def in_force_at(found: Sequence[Activation], station: str, at: datetime) -> list[InForce]:
    """Each contract's revision in force at ``station`` at ``at`` (its latest change not after ``at``)."""
    latest: dict[str, Activation] = {}
    for activation in found:
        if activation.station == station and activation.at <= at:
            latest[activation.contract] = activation
    return [
        InForce(contract, a.revision, a.at)
        for contract, a in sorted(latest.items())
        if a.revision is not None
    ]


@dataclass(frozen=True, slots=True)
class Period:
    """From when until when (``until`` None: still) a station had one bundle revision in force."""

    station: str
    bundle_revision: str
    since: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class RevisionHistory:
    """One contract revision as PolicyCentral shows it."""

    revision: str
    submitted: datetime
    author: str | None
    approvers: tuple[str, ...]
    state: str
    first: bool
    emergency: bool
    distributed: datetime | None
    diff: tuple[str, ...]
    periods: tuple[Period, ...] = field(default=())

    def json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "submitted": self.submitted.isoformat(),
            "author": self.author,
            "approvers": list(self.approvers),
            "state": self.state,
            "first": self.first,
            "emergency": self.emergency,
            "distributed": self.distributed.isoformat() if self.distributed else None,
            "diff": list(self.diff),
            "periods": [
                {
                    "station": p.station,
                    "bundleRevision": p.bundle_revision,
                    "since": p.since.isoformat(),
                    "until": p.until.isoformat() if p.until else None,
                }
                for p in self.periods
            ],
        }


def bundle_revisions(entries: Iterable[ledger.Entry], contract: str) -> dict[str, str]:
    """Bundle revision → the contract revision it was compiled from (``contract.deployed`` entries)."""
    found = {}
    for entry in entries:
        if entry.kind == "contract.deployed" and entry.data.get("contract") == contract:
            spec = entry.data.get("specRevision")
            if isinstance(spec, str):
                found[str(entry.data.get("revision"))] = spec
    return found


def bundle_rules(entries: Iterable[ledger.Entry]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(contract, bundle revision) → the ids of the rules the hub compiled into it.

    From the drivers' ``contract.deployed`` entries (their ``rules``): what the hub *sent*, so a
    station holding that revision number with other rules in its store disagrees with the hub.
    """
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for entry in entries:
        rules = entry.data.get("rules")
        if entry.kind == "contract.deployed" and isinstance(rules, list):
            found[(str(entry.data.get("contract")), str(entry.data.get("revision")))] = tuple(
                str(r) for r in rules
            )
    return found


def with_rules(found: Sequence[InForce], rules: Mapping[tuple[str, str], tuple[str, ...]]) -> list[InForce]:
    """``found`` with each revision's rule ids from ``rules`` (None where the hub never recorded them)."""
    return [replace(f, rules=rules.get((f.contract, f.revision))) for f in found]


def periods(found: Sequence[Activation], contract: str) -> list[Period]:
    """Each station's periods of each bundle revision of ``contract``, from its activations."""
    result: list[Period] = []
    open_: dict[str, tuple[str, datetime]] = {}
    for activation in found:
        if activation.contract != contract:
            continue
        held = open_.pop(activation.station, None)
        if held is not None:
            result.append(Period(activation.station, held[0], held[1], activation.at))
        if activation.revision is not None:
            open_[activation.station] = (activation.revision, activation.at)
    result.extend(Period(station, rev, since, None) for station, (rev, since) in sorted(open_.items()))
    return sorted(result, key=lambda p: (p.since, p.station))


def history(
    record: approval.Record,
    *,
    found: Sequence[Activation] = (),
    compiled_from: Mapping[str, str] | None = None,
    now: datetime,
) -> list[RevisionHistory]:
    """Every revision of the record's contract, oldest first, with diff, people and station periods."""
    spans = periods(found, record.contract)
    mapping = compiled_from or {}
    rows = []
    previous: Mapping[str, Any] | None = None
    for revision in record.revisions:
        mine = tuple(p for p in spans if mapping.get(p.bundle_revision) == revision.revision)
        rows.append(
            RevisionHistory(
                revision=revision.revision,
                submitted=revision.submitted,
                author=revision.author.badge if revision.author else None,
                approvers=tuple(a.badge for a in revision.approvals),
                state=revision.state(now),
                first=revision.first,
                emergency=revision.emergency,
                distributed=revision.distributed,
                diff=tuple(changes(previous, revision.spec)) if previous is not None else (),
                periods=mine,
            )
        )
        previous = revision.spec
    return rows
