"""The Nadcap job audit packet: DOMAIN.md's nine sections, built from the hub log as it stood at the work.

An auditor names a shipped job (a station's job id, a PO line, or a serial);
the packet finds every station job on that PO line and serial (pt-1's
inspection, sr-1's receipt and shipment) through the audit index, and reads
each fact from the entries themselves:

- what a station knew when it decided is the last record it had received
  *before* the job's first entry (ledger order at that station), so a record
  that changed later (a recall, a revocation, a lapsed exam) never rewrites
  the past; the record's own dates are then judged at the time of the work
  (``facts``' ``*_by(at)`` methods, the interval arithmetic of
  :mod:`smart.intervals` with the interval the contract in force names);
- today's record is shown beside it where it differs, so the auditor sees
  both "valid then" and "lapsed since";
- every item cites the entries it rests on (global index), and the packet
  carries one proof bundle per cited entry against one cosigned checkpoint.

Each item carries the checklist question it answers (:mod:`.checklist`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from smart import intervals
from smart.contracts import facts as f
from smart.contracts import manifests
from smart.contracts.families import vocabulary
from smart.contracts.families.credential import CredentialRule, current_certification
from smart.contracts.families.exam import ExamRule
from smart.contracts.models import SmartContract
from smart.hub.audit import checklist
from smart.ledger.entry import Entry
from smart.node import records


class JobNotFound(LookupError):
    """No station job on the ledger matches what the auditor asked for; the message says what was asked."""


@dataclass(frozen=True, slots=True)
class Item:
    """One thing an auditor checks: what the ledger says, the entries that say it, the question it answers."""

    key: str
    title: str
    facts: tuple[tuple[str, str], ...]
    cites: tuple[int, ...]
    question: checklist.Question
    #: Something the auditor should look at (a record that changed since, a block, a gap).
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    number: int
    title: str
    items: tuple[Item, ...]
    empty: str = "nothing on the ledger"


@dataclass(frozen=True, slots=True)
class StationJob:
    """One station's part of the work: its job id there, when, and the entries that are the job."""

    station: str
    job: str
    first_idx: int
    first_seq: int
    started: datetime
    finished: datetime
    entries: tuple[tuple[int, Entry], ...]


@dataclass(frozen=True, slots=True)
class Packet:
    asked: str
    po: str | None
    line: str | None
    part: str | None
    serials: tuple[str, ...]
    jobs: tuple[StationJob, ...]
    sections: tuple[Section, ...]
    built_at: datetime
    ledger_size: int

    @property
    def cited(self) -> tuple[int, ...]:
        return tuple(sorted({i for s in self.sections for item in s.items for i in item.cites}))

    @property
    def slug(self) -> str:
        if self.po and self.line:
            return f"{self.po}-{self.line}" + (f"-{self.serials[0]}" if len(self.serials) == 1 else "")
        return self.asked.replace("/", "-")


#: Jobs listed per reverse search in a packet (the rest by ``smart audit impact``).
SHOWN = 20

SECTION_TITLES = (
    "Contract",
    "Traveler",
    "People at the moment of work",
    "Equipment",
    "Consumables",
    "Results",
    "Release",
    "Integrity",
    "Reverse search",
)


# -- reading the index and the log ---------------------------------------------------------------


def _entries(conn: psycopg.Connection[Any], idxs: Iterable[int]) -> dict[int, Entry]:
    wanted = sorted(set(idxs))
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT idx, entry FROM public.ledger_entries WHERE idx = ANY(%s)", (wanted,)
    ).fetchall()
    return {int(i): Entry.from_bytes(bytes(raw), canonical=False) for i, raw in rows}


def _station_jobs_for(conn: psycopg.Connection[Any], ref: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT DISTINCT node, job FROM audit.refs WHERE ref = %s AND job IS NOT NULL", (ref,)
    ).fetchall()
    return [(str(n), str(j)) for n, j in rows]


def _job_refs(conn: psycopg.Connection[Any], node: str, job: str, prefix: str) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT ref FROM audit.refs WHERE node = %s AND job = %s AND ref LIKE %s",
        (node, job, prefix + "%"),
    ).fetchall()
    return sorted(str(r[0])[len(prefix) :] for r in rows)


def find_jobs(
    conn: psycopg.Connection[Any],
    *,
    job: str | None = None,
    po: str | None = None,
    line: str | None = None,
    serial: str | None = None,
) -> tuple[str, str | None, str | None, tuple[str, ...], list[tuple[str, str]]]:
    """(what was asked, PO, line, serials, station jobs) for a job id, a PO line, or a serial."""
    if job is not None:
        asked = f"job {job}"
        seeds = _station_jobs_for(conn, f"job/{job}")
    elif po is not None and line is not None:
        asked = f"PO {po} line {line}"
        seeds = _station_jobs_for(conn, f"po-line/{po}/{line}")
    elif serial is not None:
        asked = f"serial {serial}"
        seeds = _station_jobs_for(conn, f"serial/{serial}")
    else:
        raise JobNotFound("name a job, a PO and line, or a serial")
    if not seeds:
        raise JobNotFound(f"no station job on the ledger for {asked}")
    lines = sorted({pl for n, j in seeds for pl in _job_refs(conn, n, j, "po-line/")})
    serials = sorted({s for n, j in seeds for s in _job_refs(conn, n, j, "serial/")})
    if serial is not None:
        serials = [serial]
    found_po = found_line = None
    if lines:
        found_po, _, found_line = lines[0].partition("/")
    jobs = set(seeds)
    if found_po is not None and found_line is not None:  # the same parts at the other stations
        for node, other in _station_jobs_for(conn, f"po-line/{found_po}/{found_line}"):
            theirs = set(_job_refs(conn, node, other, "serial/"))
            if po is not None or not serials or theirs & set(serials):
                jobs.add((node, other))
    return asked, found_po, found_line, tuple(serials), sorted(jobs)


def _station_job(conn: psycopg.Connection[Any], node: str, job: str) -> StationJob:
    rows = conn.execute(
        "SELECT DISTINCT ledger_idx FROM audit.refs WHERE node = %s AND job = %s ORDER BY ledger_idx",
        (node, job),
    ).fetchall()
    entries = _entries(conn, (int(r[0]) for r in rows))
    ordered = tuple(sorted(entries.items(), key=lambda kv: kv[1].node_seq))
    times = [t for _, e in ordered if (t := _work_time(e)) is not None]
    first_idx, first = ordered[0]
    return StationJob(node, job, first_idx, first.node_seq, min(times), max(times), ordered)


def _as_of(
    conn: psycopg.Connection[Any], node: str, refs: Sequence[str], before_seq: int | None
) -> dict[str, tuple[int, Entry]]:
    """The last entry of each ``ref`` at ``node`` before ``before_seq`` (None: the latest of all)."""
    if not refs:
        return {}
    bound = before_seq if before_seq is not None else 2**62
    rows = conn.execute(
        "SELECT DISTINCT ON (ref) ref, ledger_idx FROM audit.refs"
        " WHERE node = %s AND ref = ANY(%s) AND node_seq < %s ORDER BY ref, node_seq DESC",
        (node, list(refs), bound),
    ).fetchall()
    entries = _entries(conn, (int(r[1]) for r in rows))
    return {str(ref): (int(idx), entries[int(idx)]) for ref, idx in rows}


def _hub_entries(conn: psycopg.Connection[Any], refs: Sequence[str]) -> list[tuple[int, Entry]]:
    rows = conn.execute(
        "SELECT DISTINCT ledger_idx FROM audit.refs WHERE ref = ANY(%s) AND job IS NULL"
        " AND kind NOT LIKE 'record.%%' ORDER BY ledger_idx",
        (list(refs),),
    ).fetchall()
    entries = _entries(conn, (int(r[0]) for r in rows))
    return sorted(entries.items())


def _work_time(entry: Entry) -> datetime | None:
    data = entry.data if isinstance(entry.data, dict) else {}
    event = data.get("event") if isinstance(data.get("event"), dict) else None
    when = (event or {}).get("at") or data.get("at")
    if isinstance(when, str):
        return datetime.fromisoformat(when)
    return None


def _value(entry: Entry) -> Any:
    data = entry.data if isinstance(entry.data, dict) else {}
    return data.get("value")


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


# -- the contract's intervals (data, never code) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Rules:
    """The intervals the contracts name, by contract name: exam → interval, and the shop's time zone."""

    exams: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    zones: Mapping[str, str] = field(default_factory=dict)
    #: contract → method → who may supervise a trainee there (lowest level, whether an instructor may).
    supervision: Mapping[str, Mapping[str, tuple[vocabulary.Level, bool]]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path | None) -> Rules:
        if directory is None or not directory.exists():
            return cls()
        exams: dict[str, dict[str, str]] = {}
        zones: dict[str, str] = {}
        supervision: dict[str, dict[str, tuple[vocabulary.Level, bool]]] = {}
        for loaded in manifests.load([directory]):
            contract = loaded.manifest
            if not isinstance(contract, SmartContract):
                continue
            name = contract.metadata.name
            zones[name] = str(getattr(contract.spec, "timezone", None) or "UTC")
            for rule in contract.spec.rules:
                if isinstance(rule, ExamRule):
                    exams.setdefault(name, {})[rule.exam] = str(rule.every)
                if isinstance(rule, CredentialRule) and rule.supervisor is not None:
                    supervision.setdefault(name, {})[rule.method] = (
                        rule.supervisor.min_level,
                        rule.supervisor.instructor_allowed,
                    )
        return cls(exams, zones, supervision)

    def supervisor_wanted(self, contract: str | None, method: str) -> tuple[vocabulary.Level, bool]:
        """Who may supervise a trainee in ``method`` under the contract; DOMAIN rule 1 when it is silent."""
        name = (contract or "").split("@")[0]
        return self.supervision.get(name, {}).get(method, (vocabulary.Level.LEVEL_2, True))

    def exam_due(self, contract: str | None, exam: str, taken: datetime) -> tuple[date, str] | None:
        name = (contract or "").split("@")[0]
        every = self.exams.get(name, {}).get(exam)
        if every is None:
            return None
        zone = ZoneInfo(self.zones.get(name, "UTC"))
        return intervals.due(taken.astimezone(zone).date(), intervals.parse(every)), every


# -- the nine sections ----------------------------------------------------------------------------


class _Builder:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        jobs: list[StationJob],
        rules: Rules,
        now: datetime,
        questions: Mapping[str, checklist.Question] | None = None,
    ):
        self.conn = conn
        self.jobs = jobs
        self.rules = rules
        self.now = now
        self.q = checklist.questions() if questions is None else questions

    def item(
        self,
        key: str,
        title: str,
        rows: Iterable[tuple[str, object]],
        cites: Iterable[int],
        note: str | None = None,
    ) -> Item:
        facts = tuple((label, value if isinstance(value, str) else _text(value)) for label, value in rows)
        return Item(key, title, facts, tuple(sorted(set(cites))), self.q[key], note)

    # 1
    def contract(self, po: str | None, line: str | None) -> list[Item]:
        if po is None or line is None:
            return []
        items: list[Item] = []
        for idx, entry in _hub_entries(self.conn, [f"po-line/{po}/{line}", f"po/{po}"]):
            data = entry.data if isinstance(entry.data, dict) else {}
            if entry.kind == "po.added":
                after = data.get("after", {})
                ours = [x for x in after.get("lines", []) if str(x.get("line")) == line]
                rows: list[tuple[str, object]] = [
                    ("PO", po),
                    ("client", after.get("client")),
                    ("entered by", entry.actor),
                ]
                for x in ours:
                    rows += [
                        (
                            "line",
                            f"{line}: {x.get('part')} rev {x.get('part_revision')}, qty {x.get('quantity')}",
                        ),
                        ("serials", ", ".join(x.get("serials") or []) or "—"),
                        ("due", x.get("due_date")),
                    ]
                    for fl in x.get("flowdowns", []):
                        rows.append(
                            (
                                "flowdown",
                                f"{fl.get('spec')} rev {fl.get('spec_revision')}, class {fl.get('class')}, "
                                f"criteria: {fl.get('acceptance_criteria')}, Nadcap "
                                f"{'required' if fl.get('nadcap_required') else 'not required'}, "
                                f"retention {fl.get('retention')}",
                            )
                        )
                items.append(self.item("contract-review", f"PO {po} entered", rows, [idx]))
            elif entry.kind == "po.line.reviewed":
                items.append(
                    self.item(
                        "contract-review",
                        f"Contract review of line {line}",
                        [
                            ("reviewer", entry.actor),
                            ("when", data.get("reviewedAt")),
                            ("outcome", data.get("outcome")),
                            ("line version reviewed", data.get("lineVersion")),
                            ("notes", data.get("notes")),
                        ],
                        [idx],
                    )
                )
            elif entry.kind == "po.line.released":
                items.append(
                    self.item(
                        "contract-review",
                        f"Line {line} released to the floor",
                        [
                            ("released by", data.get("releasedBy")),
                            ("when", data.get("releasedAt")),
                            ("line version", data.get("lineVersion")),
                            ("traveler revision", data.get("travelerRevision")),
                            ("stations", ", ".join(data.get("stations", []))),
                        ],
                        [idx],
                    )
                )
            elif entry.kind.startswith("po.line."):
                items.append(
                    self.item("contract-review", f"Line {line}: {entry.kind}", [("by", entry.actor)], [idx])
                )
        for job in self.jobs:
            held = _as_of(self.conn, job.station, [f"record/po-line/{po}/{line}"], job.first_seq)
            for idx, entry in held.values():
                value = _value(entry) or {}
                flow = value.get("flowdowns", {})
                items.append(
                    self.item(
                        "contract-review",
                        f"The PO line as {job.station} held it for {job.job}",
                        [
                            ("contract reviewed by", value.get("contract_reviewed_by")),
                            ("released", value.get("released")),
                            ("operations", ", ".join(value.get("operations", []))),
                            *[(f"flowdown {k}", str(v)) for k, v in sorted(flow.items())],
                        ],
                        [idx],
                    )
                )
        return items

    # 2
    def traveler(self, po: str | None, line: str | None) -> list[Item]:
        items: list[Item] = []
        if po is not None and line is not None:
            for idx, entry in _hub_entries(self.conn, [f"po-line/{po}/{line}"]):
                if not entry.kind.startswith("traveler."):
                    continue
                after = (entry.data or {}).get("after", {})
                rows: list[tuple[str, object]] = [
                    ("revision", after.get("revision")),
                    ("by", entry.actor),
                    ("reason", after.get("reason")),
                ]
                for op in after.get("operations", []):
                    rows.append(
                        (
                            f"operation {op.get('seq', '')}".strip(),
                            f"{op.get('station')} {op.get('process')}: {op.get('procedure')} rev "
                            f"{op.get('procedure_revision')}, {op.get('spec')}",
                        )
                    )
                items.append(self.item("traveler", f"Traveler ({entry.kind})", rows, [idx]))
        for job in self.jobs:
            people: set[str] = set()
            procedures: set[str] = set()
            contracts: set[str] = set()
            cites = []
            verbs = []
            for idx, entry in job.entries:
                if entry.contract:
                    contracts.add(entry.contract.split("@")[0] + "@" + entry.contract.split("@")[1][:12])
                if entry.kind == "job.transition":
                    verbs.append(
                        f"{entry.data.get('verb')} → {entry.data.get('to')} at {entry.data.get('at')}"
                    )
                    cites.append(idx)
                if entry.kind == "module.decision":
                    event = entry.data.get("event", {})
                    if event.get("person"):
                        people.add(str(event["person"]))
                    if event.get("procedure"):
                        procedures.add(f"{event['procedure']} rev {event.get('procedure_revision')}")
            items.append(
                self.item(
                    "traveler",
                    f"{job.station}: job {job.job}",
                    [
                        ("station", job.station),
                        ("from", _when(job.started)),
                        ("to", _when(job.finished)),
                        ("operators", ", ".join(sorted(people)) or "—"),
                        ("procedure run", ", ".join(sorted(procedures)) or "none named"),
                        ("contract revision in force", ", ".join(sorted(contracts))),
                        *[("transition", v) for v in verbs],
                    ],
                    cites,
                )
            )
            for run in sorted(procedures):
                proc_id = run.split(" rev ")[0]
                held = _as_of(self.conn, job.station, [f"record/procedure/{proc_id}"], job.first_seq)
                hub = _hub_entries(self.conn, [f"procedure/{proc_id}"])
                approvals = [
                    (i, e) for i, e in hub if e.ts <= (held[next(iter(held))][1].ts if held else e.ts)
                ] or hub
                for idx, entry in held.values():
                    value = _value(entry) or {}
                    ran = run.split(" rev ")[1]
                    note = (
                        None
                        if value.get("revision") == ran
                        else (f"the station held revision {value.get('revision')}, the job ran {ran}")
                    )
                    items.append(
                        self.item(
                            "procedure",
                            f"Procedure {proc_id} in force at {job.station}",
                            [
                                ("revision in force", value.get("revision")),
                                ("method", value.get("method")),
                                ("approved by (Level 3)", value.get("approved_by")),
                                ("validated", value.get("validated")),
                                *[
                                    (f"approval recorded by {e.node}", f"{e.actor}, {e.ts}")
                                    for _, e in approvals
                                ],
                            ],
                            [idx, *(i for i, _ in approvals)],
                            note,
                        )
                    )
        return items

    # 3
    def people(self) -> list[Item]:
        items: list[Item] = []
        for job in self.jobs:
            roles: dict[str, set[str]] = {}
            method = None
            work_at = job.started
            gate_idx = None
            for idx, entry in job.entries:
                data = entry.data if isinstance(entry.data, dict) else {}
                if entry.kind == "module.decision":
                    event = data.get("event", {})
                    if event.get("person"):
                        roles.setdefault(str(event["person"]), set()).add("operator")
                        if (
                            gate_idx is None
                            and data.get("module") == "gatekeeper"
                            and data.get("verb") == "start"
                        ):
                            gate_idx, work_at = idx, _work_time(entry) or work_at
                    if event.get("supervisor"):
                        roles.setdefault(str(event["supervisor"]), set()).add("supervisor")
                if entry.kind in ("record.job", "job.handoff"):
                    job_record = data.get("value") or data.get("record") or {}
                    if job_record.get("signed_by"):
                        roles.setdefault(str(job_record["signed_by"]), set()).add("signed the results")
                    if job_record.get("coc_signed_by"):
                        roles.setdefault(str(job_record["coc_signed_by"]), set()).add("signed the C of C")
            runs = _job_refs(self.conn, job.station, job.job, "procedure/")
            if runs:
                held = _as_of(
                    self.conn, job.station, [f"record/procedure/{runs[0].split('@')[0]}"], job.first_seq
                )
                for _, entry in held.values():
                    method = (_value(entry) or {}).get("method")
            refs = [f"record/person/{p}" for p in roles]
            then = _as_of(self.conn, job.station, refs, job.first_seq)
            today = _as_of(self.conn, job.station, refs, None)
            supervised = self.supervision(job, method, work_at, then, today)
            for person in sorted(roles):
                ref = f"record/person/{person}"
                if ref not in then:
                    items.append(
                        self.item(
                            "personnel",
                            f"{person} at {job.station} ({', '.join(sorted(roles[person]))})",
                            [("record", "none received by the station before the job")],
                            [],
                            "no personnel record at the station before the job",
                        )
                    )
                    continue
                idx, entry = then[ref]
                held_then: f.Person = records.parse("person", _value(entry))
                latest_idx, latest_entry = today.get(ref, then[ref])
                latest: f.Person = records.parse("person", _value(latest_entry))
                items.extend(
                    self._person(
                        job,
                        person,
                        roles[person],
                        method,
                        work_at,
                        held_then,
                        latest,
                        idx,
                        latest_idx,
                        gate_idx,
                    )
                )
            items.extend(supervised)
        return items

    def supervision(
        self,
        job: StationJob,
        method: str | None,
        at: datetime,
        then: Mapping[str, tuple[int, Entry]],
        today: Mapping[str, tuple[int, Entry]],
    ) -> list[Item]:
        """Who performed as a trainee, under whose supervision, and whether the supervisor qualified then.

        From the job's own decisions (each names the badged person and the supervisor badged beside
        them) and the people's records as the station held them before the job; the supervisor's
        qualification is judged at the time of the work against what the contract in force asks
        (its credential rule's supervisor level, instructor or not), once by the record the station
        had, and again by today's record when that differs (a revocation dated before the work).
        """
        contract = next((e.contract for _, e in job.entries if e.contract), None)
        pairs: dict[tuple[str, str | None], list[tuple[int, str]]] = {}
        for idx, entry in job.entries:
            data = entry.data if isinstance(entry.data, dict) else {}
            event = data.get("event", {}) if entry.kind == "module.decision" else {}
            person = event.get("person") if isinstance(event, dict) else None
            if not person or data.get("module") != "gatekeeper":
                continue
            supervisor = event.get("supervisor")
            is_trainee = supervisor is not None
            if not is_trainee and method is not None and f"record/person/{person}" in then:
                held: f.Person = records.parse("person", _value(then[f"record/person/{person}"][1]))
                cert = current_certification(held, method, at)
                is_trainee = cert is not None and cert.level is vocabulary.Level.TRAINEE
            if is_trainee:
                pairs.setdefault((str(person), str(supervisor) if supervisor else None), []).append(
                    (idx, str(data.get("outcome")))
                )
        items: list[Item] = []
        for (trainee, supervisor), decided in sorted(pairs.items(), key=lambda kv: kv[1][0][0]):
            cites = [i for i, _ in decided]
            allowed = sum(1 for _, outcome in decided if outcome == "allow")
            level_then = "no record before the job"
            if method is not None and f"record/person/{trainee}" in then:
                held_trainee: f.Person = records.parse("person", _value(then[f"record/person/{trainee}"][1]))
                cert = current_certification(held_trainee, method, at)
                level_then = f"{method} {cert.level.value}" if cert else f"no current {method} certification"
                cites.append(then[f"record/person/{trainee}"][0])
            rows: list[tuple[str, object]] = [
                ("performed by", f"{trainee} ({level_then})"),
                ("under the supervision of", supervisor or "NO supervisor badged in"),
                ("decisions", f"{allowed} allowed, {len(decided) - allowed} refused"),
            ]
            notes: list[str] = []
            if supervisor is None:
                notes.append(f"{trainee} badged in as a trainee without a supervisor")
            elif method is None:
                rows.append(("supervisor qualified at the time", "method unknown: not judged"))
            else:
                least, instructor_ok = self.rules.supervisor_wanted(contract, method)
                rows.append(
                    (
                        "required to supervise",
                        f"{least.value}+ {method}" + (" or instructor" if instructor_ok else ""),
                    )
                )
                ref = f"record/person/{supervisor}"
                records_of = [("record then", then.get(ref))]
                if ref in today and (ref not in then or today[ref][0] != then[ref][0]):
                    records_of.append(("record now", today[ref]))
                for label, found in records_of:
                    if found is None:
                        rows.append((f"supervisor's {label}", "none received by the station before the job"))
                        notes.append(f"no record of {supervisor} at {job.station} before the job")
                        continue
                    idx, entry = found
                    cites.append(idx)
                    boss: f.Person = records.parse("person", _value(entry))
                    cert = current_certification(boss, method, at)
                    qualified = cert is not None and (
                        cert.level.rank >= least.rank or (instructor_ok and cert.instructor)
                    )
                    held_as = (
                        f"{method} {cert.level.value}{' (instructor)' if cert.instructor else ''}, "
                        f"expires {_when(cert.expires)}"
                        if cert
                        else f"no {method} certification valid at {_when(at)}"
                    )
                    revoked = [
                        c
                        for c in boss.certifications
                        if c.method == method and c.revoked and c.revoked_by(at)
                    ]
                    if cert is None and revoked:
                        held_as += f" (revoked with effect from {_when(revoked[0].revoked_at)}, entry {idx})"
                    rows += [
                        (f"supervisor's certification at the work ({label}, entry {idx})", held_as),
                        (f"supervisor qualified at the time ({label})", "yes" if qualified else "NO"),
                    ]
                    if not qualified:
                        notes.append(
                            f"{supervisor} was NOT qualified to supervise {method} at {_when(at)} "
                            f"by the {label}"
                        )
            items.append(
                self.item(
                    "trainee",
                    f"{job.station} {job.job}: trainee {trainee} under {supervisor or 'no supervisor'}",
                    rows,
                    cites,
                    "; ".join(notes) or None,
                )
            )
        return items

    def _person(
        self,
        job: StationJob,
        person: str,
        roles: set[str],
        method: str | None,
        at: datetime,
        then: f.Person,
        now: f.Person,
        idx: int,
        latest_idx: int,
        gate_idx: int | None,
    ) -> list[Item]:
        contract = next((e.contract for _, e in job.entries if e.contract), None)
        title = f"{person} at {job.station} ({', '.join(sorted(roles))}), as on record at {_when(at)}"
        rows: list[tuple[str, object]] = []
        notes: list[str] = []
        certs = [c for c in then.certifications if method is None or c.method == method]
        for c in certs:
            valid = c.valid_at(at)
            rows += [
                ("method", c.method),
                ("level", str(c.level.value if hasattr(c.level, "value") else c.level)),
                ("technique", c.technique or ", ".join(c.techniques) or "any"),
                ("certified", _when(c.issued)),
                ("certification expires", _when(c.expires)),
                ("valid at the time of work", "yes" if valid else "NO"),
                ("basis", c.basis),
            ]
            if c.revoked:
                rows.append(("revoked", f"at {_when(c.revoked_at)}" if c.revoked_at else "yes (no date)"))
        for c in now.certifications:
            if (
                (method is None or c.method == method)
                and c.revoked_by(self.now)
                and not any(x.revoked for x in certs)
            ):
                notes.append(f"certification {c.method} revoked since {_when(c.revoked_at)} (after the work)")
            elif (
                (method is None or c.method == method) and not c.valid_at(self.now) and c.expires <= self.now
            ):
                notes.append(f"certification {c.method} expired {_when(c.expires)}")
        if not certs:
            rows.append(("certification", f"none for {method}" if method else "none on record"))
        if then.authorities:
            rows.append(("authorities", ", ".join(then.authorities)))
        if method is not None:
            last = then.last_performed_by(method, at)
            rows.append((f"last performed {method} before the work", _when(last)))
        items = [
            self.item(
                "personnel",
                title,
                rows,
                [idx, *([gate_idx] if gate_idx is not None else [])],
                "; ".join(notes) or None,
            )
        ]
        exam_rows: list[tuple[str, object]] = []
        exam_notes: list[str] = []
        for exam in sorted({e.exam for e in then.exams}):
            taken = max(
                (e for e in then.exams if e.exam == exam and e.taken <= at),
                key=lambda e: e.taken,
                default=None,
            )
            if taken is None:
                exam_rows.append((exam, "none before the work"))
                continue
            due = self.rules.exam_due(contract, exam, taken.taken)
            exam_rows += [
                (f"{exam} taken", _when(taken.taken)),
                (f"{exam} test", taken.test or "not recorded"),
            ]
            if due is not None:
                day, every = due
                exam_rows += [
                    (f"{exam} due (every {every})", day.isoformat()),
                    (f"{exam} current at the work", "yes" if at.date() <= day else "NO"),
                ]
                latest = max((e for e in now.exams if e.exam == exam), key=lambda e: e.taken, default=taken)
                latest_due = self.rules.exam_due(contract, exam, latest.taken)
                if latest_due is not None and latest_due[0] < self.now.date():
                    exam_notes.append(
                        f"{exam} exam lapsed after {latest_due[0].isoformat()} (after the work)"
                    )
        if exam_rows:
            items.append(
                self.item(
                    "vision",
                    f"{person}'s examinations at {_when(at)}",
                    exam_rows,
                    [idx],
                    "; ".join(exam_notes) or None,
                )
            )
        if latest_idx != idx:
            items[0] = Item(
                items[0].key,
                items[0].title,
                (*items[0].facts, ("record changed since", f"entry {latest_idx}")),
                (*items[0].cites, latest_idx),
                items[0].question,
                items[0].note,
            )
        return items

    # 4 and 5
    def equipment_and_consumables(self) -> tuple[list[Item], list[Item]]:
        equipment_items: list[Item] = []
        lot_items: list[Item] = []
        for job in self.jobs:
            gear = _job_refs(self.conn, job.station, job.job, "equipment/")
            lots = _job_refs(self.conn, job.station, job.job, "lot/")
            at = job.started
            then = _as_of(self.conn, job.station, [f"record/equipment/{g}" for g in gear], job.first_seq)
            today = _as_of(self.conn, job.station, [f"record/equipment/{g}" for g in gear], None)
            for g in gear:
                ref = f"record/equipment/{g}"
                if ref not in then:
                    equipment_items.append(
                        self.item(
                            "calibration",
                            f"{g} at {job.station}",
                            [("record", "none before the job")],
                            [],
                            "no equipment record",
                        )
                    )
                    continue
                idx, entry = then[ref]
                record: f.EquipmentRecord = records.parse("equipment", _value(entry))
                cal = record.calibration_by(at)
                rows: list[tuple[str, object]] = [
                    ("asset", record.id),
                    ("kind", record.kind),
                    ("calibration in force", _when(cal.at) if cal else "none before the work"),
                    ("in tolerance then", ("yes" if cal.in_tolerance else "NO") if cal else "—"),
                    (
                        "traceability",
                        record.attributes.get("certificate", "certificate not on the station's record"),
                    ),
                    *[
                        (f"attribute {k}", v)
                        for k, v in sorted(record.attributes.items())
                        if k != "certificate"
                    ],
                ]
                note = None
                later_idx, later_entry = today.get(ref, then[ref])
                if later_idx != idx:
                    later: f.EquipmentRecord = records.parse("equipment", _value(later_entry))
                    if later.calibration is not None and not later.calibration.in_tolerance:
                        note = (
                            f"found out of tolerance at its calibration of {_when(later.calibration.at)} "
                            f"(entry {later_idx}): see the reverse search"
                        )
                equipment_items.append(
                    self.item(
                        "calibration",
                        f"{g} at {job.station}",
                        rows,
                        [idx, *([later_idx] if later_idx != idx else [])],
                        note,
                    )
                )
            checks = self._checks(job)
            for name, (idx, entry) in sorted(checks.items()):
                value = _value(entry) or {}
                readings = value.get("readings", {})
                equipment_items.append(
                    self.item(
                        "daily-checks",
                        f"{job.station} check {name.split('/')[-1]} before {job.job}",
                        [
                            ("done", value.get("at")),
                            ("by", entry.actor),
                            ("with", value.get("equipment") or "—"),
                            ("passed", "yes" if value.get("passed") else "NO"),
                            *[(k, f"{r.get('value')} {r.get('unit')}") for k, r in sorted(readings.items())],
                        ],
                        [idx],
                    )
                )
            lot_then = _as_of(self.conn, job.station, [f"record/lot/{lot}" for lot in lots], job.first_seq)
            for lot in lots:
                ref = f"record/lot/{lot}"
                if ref not in lot_then:
                    lot_items.append(
                        self.item(
                            "consumables",
                            f"lot {lot}",
                            [("record", "none before the job")],
                            [],
                            "no lot record",
                        )
                    )
                    continue
                idx, entry = lot_then[ref]
                record_lot: f.Lot = records.parse("lot", _value(entry))
                lot_items.append(
                    self.item(
                        "consumables",
                        f"{record_lot.material} lot {lot} at {job.station}",
                        [
                            ("batch", lot),
                            ("material", record_lot.material),
                            ("form", record_lot.form),
                            ("expires", _when(record_lot.expires)),
                            ("in date at the work", "yes" if at < record_lot.expires else "NO"),
                            ("opened", _when(record_lot.opened)),
                        ],
                        [idx],
                    )
                )
        return equipment_items, lot_items

    def _checks(self, job: StationJob) -> dict[str, tuple[int, Entry]]:
        rows = self.conn.execute(
            "SELECT DISTINCT ref FROM audit.refs WHERE node = %s AND ref LIKE 'record/check/%%'"
            " AND node_seq < %s",
            (job.station, job.first_seq),
        ).fetchall()
        return _as_of(self.conn, job.station, [str(r[0]) for r in rows], job.first_seq)

    # 6
    def results(self) -> list[Item]:
        items: list[Item] = []
        for job in self.jobs:
            handoff = next(((i, e) for i, e in job.entries if e.kind == "job.handoff"), None)
            records_ = [(i, e) for i, e in job.entries if e.kind == "record.job"]
            final = handoff or (records_[-1] if records_ else None)
            steps = [
                (i, e) for i, e in job.entries if e.kind == "job.transition" and e.data.get("verb") == "step"
            ]
            for (idx, entry), (_, rec) in zip(
                steps, [r for r in records_ if r[1].data.get("value", {}).get("steps")], strict=False
            ):
                value = rec.data.get("value", {})
                step = value.get("steps", [])[-1] if value.get("steps") else "?"
                readings = value.get("step_measurements", {}).get(step, {})
                items.append(
                    self.item(
                        "process-steps",
                        f"{job.station} {job.job}: {step}",
                        [
                            ("at", entry.data.get("at")),
                            ("by", entry.actor),
                            ("allowed", "yes" if entry.data.get("allowed") else "NO"),
                            *[(k, f"{r.get('value')} {r.get('unit')}") for k, r in sorted(readings.items())],
                        ],
                        [idx],
                    )
                )
            if final is not None:
                idx, entry = final
                record = entry.data.get("record") or entry.data.get("value") or {}
                ncrs = record.get("ncrs", [])
                items.append(
                    self.item(
                        "results",
                        f"{job.station} {job.job}: result",
                        [
                            ("steps done", ", ".join(record.get("steps", [])) or "—"),
                            ("serials", ", ".join(record.get("serials", [])) or "—"),
                            (
                                "quantities",
                                ", ".join(f"{k} {v}" for k, v in sorted(record.get("quantities", {}).items()))
                                or "—",
                            ),
                            ("NCRs", str(len(ncrs))),
                        ],
                        [idx],
                    )
                )
                for ncr in ncrs:
                    items.append(
                        self.item(
                            "nonconformance",
                            f"NCR {ncr.get('id')}",
                            [
                                ("open", ncr.get("open")),
                                ("disposition", ncr.get("disposition") or "—"),
                                ("design authority approval", ncr.get("design_authority_approval") or "—"),
                            ],
                            [idx],
                        )
                    )
        return items

    # 7
    def release(self, quantity: int | None) -> list[Item]:
        items: list[Item] = []
        for job in self.jobs:
            for idx, entry in job.entries:
                data = entry.data
                if (
                    entry.kind == "job.transition"
                    and data.get("verb") in ("release", "ship")
                    and data.get("allowed")
                ):
                    record_entry = next(
                        (
                            e
                            for _, e in reversed(job.entries)
                            if e.kind == "record.job" and e.node_seq < entry.node_seq
                        ),
                        None,
                    )
                    record = (
                        {}
                        if record_entry is None
                        else (record_entry.data.get("record") or record_entry.data.get("value") or {})
                    )
                    signer = (
                        record.get("coc_signed_by") if data.get("verb") == "ship" else record.get("signed_by")
                    )
                    held = (
                        _as_of(self.conn, job.station, [f"record/person/{signer}"], job.first_seq)
                        if signer
                        else {}
                    )
                    authorities = ""
                    cites = [idx]
                    for pidx, pentry in held.values():
                        authorities = ", ".join((_value(pentry) or {}).get("authorities", [])) or "none"
                        cites.append(pidx)
                    qty = record.get("quantities", {})
                    rows: list[tuple[str, object]] = [
                        ("verb", data.get("verb")),
                        ("at", data.get("at")),
                        ("signed by", signer or "—"),
                        ("signer's authorities then", authorities or "—"),
                        ("decided by", ", ".join(str(d.get("module")) for d in data.get("decisions", []))),
                    ]
                    if data.get("verb") == "ship":
                        accepted = qty.get("accepted")
                        rows += [
                            ("quantity received", qty.get("received")),
                            ("quantity accepted", accepted),
                            ("quantity on the PO line", quantity),
                            ("reconciled", "yes" if quantity is None or accepted == quantity else "NO"),
                            ("certificate of conformance", f"signed by {signer}" if signer else "NOT signed"),
                        ]
                    items.append(
                        self.item("release", f"{job.station} {job.job}: {data.get('verb')}", rows, cites)
                    )
        return items

    # 8
    def integrity(self, cited: Sequence[int]) -> list[Item]:
        items = [
            self.item(
                "records-integrity",
                "Every cited entry, proved against one cosigned checkpoint",
                [
                    ("entries cited before this section", str(len(cited))),
                    ("proofs", "appendix: one proof bundle per entry cited anywhere in this packet"),
                ],
                [],
            )
        ]
        days = sorted({j.started.date() for j in self.jobs} | {j.finished.date() for j in self.jobs})
        for station in sorted({j.station for j in self.jobs}):
            rows = self.conn.execute(
                "SELECT DISTINCT ledger_idx FROM audit.refs WHERE ref = %s AND at::date = ANY(%s)"
                " ORDER BY ledger_idx",
                (f"block/{station}", days),
            ).fetchall()
            entries = _entries(self.conn, (int(r[0]) for r in rows))
            for idx, entry in sorted(entries.items()):
                if entry.kind != "job.transition":
                    continue
                reasons = entry.data.get("reasons", [])
                items.append(
                    self.item(
                        "controls-fired",
                        f"Block at {station}, {entry.data.get('at')}",
                        [("asked", f"{entry.data.get('verb')} by {entry.actor}")]
                        + [(str(r.get("rule")), str(r.get("message"))) for r in reasons],
                        [idx],
                    )
                )
        corrections = [
            (i, e) for j in self.jobs for i, e in j.entries if "correct" in e.kind or "revised" in e.kind
        ]
        items.append(
            self.item(
                "records-integrity",
                "Corrections",
                [(f"entry {i}", f"{e.kind}: {e.data.get('reason')}") for i, e in corrections]
                or [("corrections", "none recorded for this job")],
                [i for i, _ in corrections],
            )
        )
        return items

    # 9
    def reverse(self) -> list[Item]:
        from smart.hub.audit import impact

        items: list[Item] = []
        for job in self.jobs:
            for kind in ("equipment", "person", "lot", "procedure"):
                for ref in _job_refs(self.conn, job.station, job.job, f"{kind}/"):
                    touched = impact.touched(self.conn, f"{kind}/{ref}", limit=SHOWN)
                    count = impact.count(self.conn, f"{kind}/{ref}")
                    rows = [(f"{t.station} {t.job}", f"{_when(t.at)} (entry {t.idx})") for t in touched]
                    if count > len(touched):
                        rows.append(
                            ("more", f"{count - len(touched)} more: smart audit impact --{kind} {ref}")
                        )
                    items.append(
                        self.item("reverse-search", f"{kind} {ref}: every job it touched ({count})", rows, [])
                    )
        return items


def _text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (datetime, date)):
        return _when(value)
    return str(value)


def build(
    conn: psycopg.Connection[Any],
    *,
    job: str | None = None,
    po: str | None = None,
    line: str | None = None,
    serial: str | None = None,
    contracts_dir: Path | None = None,
    now: datetime | None = None,
    questions: Mapping[str, checklist.Question] | None = None,
) -> Packet:
    """The packet for a job, a PO line or a serial; :class:`JobNotFound` when the ledger has none.

    ``questions``: the checklist mapping (the packaged ``checklist.yaml`` by default).
    """
    asked, found_po, found_line, serials, pairs = find_jobs(conn, job=job, po=po, line=line, serial=serial)
    jobs = sorted((_station_job(conn, n, j) for n, j in pairs), key=lambda s: s.started)
    builder = _Builder(conn, jobs, Rules.load(contracts_dir), now or datetime.now(UTC), questions)
    quantity = None
    part = None
    if found_po is not None:
        for _, entry in _hub_entries(conn, [f"po/{found_po}"]):
            if entry.kind == "po.added":
                for x in entry.data.get("after", {}).get("lines", []):
                    if str(x.get("line")) == found_line:
                        quantity, part = x.get("quantity"), x.get("part")
    equipment, consumables = builder.equipment_and_consumables()
    sections = [
        builder.contract(found_po, found_line),
        builder.traveler(found_po, found_line),
        builder.people(),
        equipment,
        consumables,
        builder.results(),
        builder.release(quantity),
    ]
    cited = sorted({i for s in sections for item in s for i in item.cites})
    sections.append(builder.integrity(cited))
    sections.append(builder.reverse())
    size_row = conn.execute("SELECT coalesce(max(size), 0) FROM public.ledger_checkpoints").fetchone()
    return Packet(
        asked=asked,
        po=found_po,
        line=found_line,
        part=part,
        serials=serials,
        jobs=tuple(jobs),
        sections=tuple(
            Section(n, title, tuple(items))
            for n, (title, items) in enumerate(zip(SECTION_TITLES, sections, strict=True), start=1)
        ),
        built_at=builder.now,
        ledger_size=int(size_row[0]) if size_row else 0,
    )
