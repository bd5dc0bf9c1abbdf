"""What each credential kind permits (the TokenAccessLayer), as data: may these badges do this here?

An action (operate, sign acceptance, approve a procedure, enter a station,
read audit records, use equipment) is allowed when one presented, verified
credential matches one of the action's entries in ``data/permits.yaml``.
Levels compare by the credential's own scheme, so "at least Level 1" reads
the same under NAS410 and EN4179. Low levels may need a supervisor: a trainee
never works alone, the supervisor's badge must be presented too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from smart.access.credential import Credential, Kind
from smart.access.schemes import DATA, Scheme, SchemeError, load_yaml, shop_schemes

_STRICT = {"extra": "forbid"}


@dataclass(frozen=True, slots=True)
class Match:
    """One way of satisfying an action: a credential of ``kind`` whose scope fits."""

    __pydantic_config__ = _STRICT
    kind: Kind
    min_level: str | None = None
    same_method: bool = False
    this_station: bool = False
    same_equipment: bool = False
    scope: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Supervision:
    __pydantic_config__ = _STRICT
    below_level: str
    any_of: tuple[Match, ...]


@dataclass(frozen=True, slots=True)
class Action:
    __pydantic_config__ = _STRICT
    any_of: tuple[Match, ...]
    supervision: Supervision | None = None


@dataclass(frozen=True, slots=True)
class Permits:
    __pydantic_config__ = _STRICT
    actions: dict[str, Action]


@dataclass(frozen=True, slots=True)
class Permit:
    """The answer: allowed or not, every reason in plain words, and the credentials it rested on."""

    action: str
    allowed: bool
    reasons: tuple[str, ...] = ()
    credential_ids: tuple[str, ...] = ()


def load_permits(path: Path) -> Permits:
    permits: Permits = load_yaml(path, Permits)
    return permits


@cache
def shop_permits() -> Permits:
    return load_permits(DATA / "permits.yaml")


@dataclass(frozen=True, slots=True)
class _Situation:
    station: str
    method: str | None
    equipment: str | None
    schemes: Mapping[str, Scheme]


def _rank(credential: Credential, level: str, schemes: Mapping[str, Scheme]) -> tuple[int, int] | None:
    scheme = schemes.get(credential.scope.get("scheme", ""))
    held = credential.scope.get("level")
    if scheme is None or held is None:
        return None
    try:
        return scheme.rank(held), scheme.rank(level)
    except SchemeError:
        return None


def _fits(match: Match, credential: Credential, at: _Situation) -> bool:
    if credential.kind is not match.kind:
        return False
    if match.this_station and credential.scope.get("station") != at.station:
        return False
    if match.same_method and (at.method is None or credential.scope.get("method") != at.method):
        return False
    if match.same_equipment and (at.equipment is None or credential.scope.get("equipment") != at.equipment):
        return False
    if any(credential.scope.get(k) != v for k, v in match.scope.items()):
        return False
    if match.min_level is not None:
        ranks = _rank(credential, match.min_level, at.schemes)
        if ranks is None or ranks[0] < ranks[1]:
            return False
    return True


def _needed(action: str, matches: Sequence[Match], at: _Situation) -> str:
    options = []
    for m in matches:
        words = [m.kind.value]
        if m.min_level:
            words.append(f"level ≥ {m.min_level}")
        if m.same_method:
            words.append(f"in {at.method}")
        if m.this_station:
            words.append(f"for station {at.station}")
        if m.same_equipment:
            words.append(f"for {at.equipment}")
        words.extend(f"{k}: {v}" for k, v in m.scope.items())
        options.append(" ".join(words))
    return " or ".join(options)


def authorise(
    action: str,
    *,
    presented: Sequence[Credential],
    station: str,
    method: str | None = None,
    equipment: str | None = None,
    supervisor: Sequence[Credential] = (),
    permits: Permits | None = None,
    schemes: Mapping[str, Scheme] | None = None,
) -> Permit:
    """May the holder of ``presented`` (already verified) do ``action`` at ``station`` now?"""
    permits = shop_permits() if permits is None else permits
    rule = permits.actions.get(action)
    if rule is None:
        return Permit(action, False, (f"no rule for action {action!r}; known: {sorted(permits.actions)}",))
    at = _Situation(station, method, equipment, shop_schemes() if schemes is None else schemes)
    matched = next((c for c in presented for m in rule.any_of if _fits(m, c, at)), None)
    if matched is None:
        return Permit(
            action, False, (f"{action} at {station} needs a {_needed(action, rule.any_of, at)} credential",)
        )
    used = [matched.credential_id]
    if rule.supervision is not None:
        ranks = _rank(matched, rule.supervision.below_level, at.schemes)
        if ranks is not None and ranks[0] < ranks[1]:
            helper = next((c for c in supervisor for m in rule.supervision.any_of if _fits(m, c, at)), None)
            if helper is None:
                level = matched.scope.get("level")
                return Permit(
                    action,
                    False,
                    (
                        f"{action} at {station}: a level {level} holder never works alone; the supervisor's "
                        f"badge ({_needed(action, rule.supervision.any_of, at)}) is required too",
                    ),
                    tuple(used),
                )
            used.append(helper.credential_id)
    return Permit(action, True, (), tuple(used))
