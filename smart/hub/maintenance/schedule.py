"""When each instrument falls due, from the contracts' own rules: calibration intervals, TUS/SAT tables.

The intervals are contract data (the calibration rule's ``every`` per
equipment kind, the survey rule's class × instrumentation table), never
numbers written here: the hub reads the same contracts the stations enforce,
chooses for each station the contracts whose selector matches its labels,
and, where two contracts give the same instrument different intervals, the
shorter (the one that keeps every contract satisfied). The due day is the
one :mod:`smart.intervals` defines for the whole shop ("monthly" = the same
day next month, month-end rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import structlog

from smart import intervals
from smart.contracts import manifests, models, rules

log = structlog.get_logger("smart.hub.maintenance")


@dataclass(frozen=True, slots=True)
class _SurveyRow:
    survey: str
    furnace_types: frozenset[str]
    table: Mapping[tuple[str, str], intervals.Interval]


@dataclass(frozen=True, slots=True)
class _Governing:
    """What one contract says of equipment: calibration interval per kind, survey tables."""

    selector: models.LabelSelector
    calibrations: Mapping[str, intervals.Interval]
    surveys: tuple[_SurveyRow, ...]


def _length(interval: intervals.Interval) -> timedelta:
    return interval.longest


@dataclass(frozen=True, slots=True)
class Schedule:
    """The contracts' intervals, by station; :meth:`calibration_due` and :meth:`survey_due` give due days."""

    contracts: tuple[_Governing, ...] = ()
    #: Station id → its labels (from the Station manifests).
    stations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_manifests(cls, found: Iterable[models.SmartContract | models.Station]) -> Schedule:
        governing: list[_Governing] = []
        stations: dict[str, Mapping[str, str]] = {}
        for manifest in found:
            if isinstance(manifest, models.Station):
                stations[manifest.spec.station_id] = dict(manifest.metadata.labels)
                continue
            calibrations: dict[str, intervals.Interval] = {}
            surveys: list[_SurveyRow] = []
            for rule in manifest.spec.rules:
                if isinstance(rule, rules.CalibrationRule):
                    every = intervals.parse(rule.every)
                    for kind in rule.equipment_kinds:
                        held = calibrations.get(kind)
                        calibrations[kind] = every if held is None or _length(every) < _length(held) else held
                elif isinstance(rule, rules.SurveyRule) and not rule.per_qualified_range:
                    table: dict[tuple[str, str], intervals.Interval] = {
                        (cls, str(instr)): intervals.parse(row.every)
                        for row in rule.intervals
                        for cls in row.classes
                        for instr in row.instrumentation
                    }
                    surveys.append(_SurveyRow(rule.survey, frozenset(rule.furnace_types), table))
            governing.append(_Governing(manifest.spec.station_selector, calibrations, tuple(surveys)))
        return cls(tuple(governing), stations)

    @classmethod
    def load(cls, directory: Path) -> Schedule:
        """The schedule the contracts in ``directory`` (and its Station manifests) give."""
        loaded = manifests.load([directory])
        return cls.from_manifests(
            m.manifest for m in loaded if isinstance(m.manifest, models.SmartContract | models.Station)
        )

    @classmethod
    def of_folder(cls, directory: Path) -> Schedule:
        """The settings' contracts folder's schedule, said in the log; a missing folder gives none.

        With no folder no interval is known, so every calibration must carry its own next due day
        (the store refuses one without): fail closed, never a guessed interval.
        """
        if not directory.is_dir():
            log.warning("maintenance_hub.no_contracts_folder", contracts_dir=str(directory))
            return cls()
        found = cls.load(directory)
        log.info(
            "maintenance_hub.schedule_loaded",
            contracts_dir=str(directory),
            contracts=len(found.contracts),
            stations=len(found.stations),
        )
        return found

    def _governing(self, station: str) -> list[_Governing]:
        labels = self.stations.get(station)
        if labels is None:
            return list(self.contracts)  # a station no manifest names: every contract's word counts
        return [c for c in self.contracts if c.selector.matches(dict(labels))]

    def calibration_every(self, station: str, kind: str) -> intervals.Interval | None:
        found = [c.calibrations[kind] for c in self._governing(station) if kind in c.calibrations]
        return min(found, key=_length) if found else None

    def calibrated_kinds(self, station: str) -> frozenset[str]:
        return frozenset(k for c in self._governing(station) for k in c.calibrations)

    def calibration_due(self, station: str, kind: str, done: datetime) -> date | None:
        """The due day of a calibration done at ``done``; ``None`` when no contract calibrates the kind."""
        every = self.calibration_every(station, kind)
        return None if every is None else intervals.due(done.date(), every)

    def survey_every(
        self, station: str, survey: str, furnace_class: str, instrumentation: str, furnace_type: str | None
    ) -> intervals.Interval | None:
        found = [
            row.table[(furnace_class, instrumentation)]
            for c in self._governing(station)
            for row in c.surveys
            if row.survey == survey
            and (not row.furnace_types or furnace_type in row.furnace_types)
            and (furnace_class, instrumentation) in row.table
        ]
        return min(found, key=_length) if found else None

    def survey_due(
        self,
        station: str,
        survey: str,
        *,
        furnace_class: str,
        instrumentation: str,
        furnace_type: str | None,
        done: datetime,
    ) -> date | None:
        every = self.survey_every(station, survey, furnace_class, instrumentation, furnace_type)
        return None if every is None else intervals.due(done.date(), every)

    def grid(self, station: str, survey: str) -> dict[tuple[str, str], str]:
        """The survey table in force at ``station`` (class, type) → interval text, for the schedule page."""
        cells: dict[tuple[str, str], str] = {}
        for cls in ("1", "2", "3", "4", "5", "6"):
            for instr in ("A", "B", "C", "D", "D+", "E"):
                every = self.survey_every(station, survey, cls, instr, None)
                if every is not None:
                    cells[(cls, instr)] = str(every)
        return cells
