"""The station's public status: what the board on the shop floor and the hub's map may show anyone.

Anyone walking past a station may read its board, so the status says what
the *station* is doing and nothing about *who*: station id, state (idle,
in-job, blocked, offline), the job id, the contract revisions in force, the
last decision's outcome and time, and the ids of the rules that blocked it.
It never carries a person's id, name or badge, and never a reason's
message (a refusal's message names the operator: "op-7 holds no current PT
certification"). The only way in is :func:`after_decision`, which reads the
fields it needs off the event and no others, so nothing personal can leak
in by a field added later.

:func:`render_html` draws the board for a screen across the room: large
text, the state in its colour, a ``meta refresh`` every few seconds and
nothing fetched from outside the station.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import jinja2

from smart.contracts import engine
from smart.contracts import facts as f

State = Literal["idle", "in-job", "blocked", "offline"]
#: Actions after which the job has left the station.
_JOB_DONE = frozenset({"release", "ship", "close"})


@dataclass(frozen=True, slots=True)
class Status:
    """The public status of one station (no personal data by construction)."""

    station: str
    state: State = "idle"
    job: str | None = None
    revisions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    last_outcome: engine.Outcome | None = None
    last_action: str | None = None
    last_decision_at: datetime | None = None
    #: Ids of the rules that blocked the last decision (contract data, never a message).
    blocked_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "state": self.state,
            "job": self.job,
            "revisions": dict(self.revisions),
            "lastOutcome": self.last_outcome,
            "lastAction": self.last_action,
            "lastDecisionAt": self.last_decision_at.isoformat() if self.last_decision_at else None,
            "blockedBy": list(self.blocked_by),
        }


def after_decision(
    status: Status,
    *,
    event: f.Event,
    outcome: engine.Outcome,
    reasons: tuple[engine.Reason, ...] = (),
    revisions: Mapping[str, str] | None = None,
) -> Status:
    """The status once the station has decided ``outcome`` on ``event``.

    A deny blocks the station (on the event's job, if any); a job's release,
    shipment or close leaves it idle; any other allowed event with a job
    puts the station in that job.
    """
    job = event.job or status.job
    state: State
    if outcome == "deny":
        state = "blocked"
    elif event.action in _JOB_DONE:
        state, job = "idle", None
    elif job is not None:
        state = "in-job"
    else:
        state = "idle"
    return replace(
        status,
        state=state,
        job=job,
        revisions=MappingProxyType(dict(revisions)) if revisions is not None else status.revisions,
        last_outcome=outcome,
        last_action=event.action,
        last_decision_at=event.at,
        blocked_by=tuple(r.rule for r in reasons if r.severity == "deny") if outcome == "deny" else (),
    )


def offline(status: Status) -> Status:
    """The station is out of service (no link to its runtime, switched off for maintenance)."""
    return replace(status, state="offline")


def online(status: Status) -> Status:
    """Back in service: idle, or in the job it held."""
    return replace(status, state="in-job" if status.job else "idle")


_COLOURS: Mapping[str, str] = MappingProxyType(
    {"idle": "#2e7d32", "in-job": "#1565c0", "blocked": "#c62828", "offline": "#616161"}
)

_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{ refresh }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ s.station }} — {{ s.state }}</title>
<style>
body { margin: 0; font-family: system-ui, sans-serif; background: #111; color: #fff; }
main { padding: 3vh 4vw; }
h1 { font-size: 9vh; margin: 0; }
.state { font-size: 14vh; font-weight: 700; padding: 2vh 3vw; border-radius: 2vh;
         background: {{ colour }}; display: inline-block; margin: 2vh 0; }
p, li { font-size: 5vh; margin: 1vh 0; }
small { font-size: 3vh; color: #bbb; }
</style>
</head>
<body>
<main>
<h1>{{ s.station }}</h1>
<div class="state">{{ s.state | upper }}</div>
<p>Job: {{ s.job or "—" }}</p>
{% if s.last_outcome %}<p>Last decision: {{ s.last_outcome }}
{%- if s.last_action %} ({{ s.last_action }}){% endif %}
{%- if s.last_decision_at %} at {{ s.last_decision_at.strftime("%H:%M") }}{% endif %}</p>{% endif %}
{% if s.blocked_by %}<p>Blocked by: {{ s.blocked_by | join(", ") }}</p>{% endif %}
<ul>{% for name, revision in s.revisions.items() %}<li><small>{{ name }} @ {{ revision[:12] }}</small></li>
{% endfor %}</ul>
</main>
</body>
</html>
"""
)


def render_html(status: Status, *, refresh_seconds: int = 5) -> str:
    """A self-contained page for the floor's board, reloading itself every ``refresh_seconds``."""
    return _PAGE.render(s=status, colour=_COLOURS[status.state], refresh=refresh_seconds)
