"""How a module's decision is taken and recorded, the same in the station's process and in a module's own.

:func:`decide` has a module decide an event and records the decision on the node ledger
(``module.decision``) before anyone is answered; :func:`module_class` finds a module's code and
:func:`parse_request` reads a module request once, at the edge. Kept apart from
:mod:`smart.node.station` so that ``smart module run`` (one module per process, on a Pi's small
memory) loads only this, the ports and the module, never the agent, the job machine or the hub's
ledger store.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

import structlog

from smart.bus import messages
from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules import framework
from smart.node import records

if TYPE_CHECKING:
    from smart import ledger

log = structlog.get_logger("smart.node.deciding")

#: The kind of ledger entry every module decision is recorded as.
DECISION_KIND = "module.decision"


class RequestError(ValueError):
    """A module or job request that cannot be read; the reply says why and nothing is decided."""


def parse_request(station: str, data: bytes) -> tuple[f.Event, dict[str, Any]]:
    """``(event, body)`` of a ``{"event": ..., "body": ...}`` request for ``station`` (read once, here)."""
    try:
        return messages.read_module_request(data, station=station)
    except messages.MessageError as err:
        raise RequestError(str(err)) from err


def module_class(name: str) -> type[framework.StationModule] | None:
    """The :class:`StationModule` subclass in ``smart/modules/<folder>/module.py``, if the folder has one."""
    folder = name.replace("-", "_")
    try:
        loaded: ModuleType = importlib.import_module(f"smart.modules.{folder}.module")
    except ModuleNotFoundError as err:
        if err.name not in (f"smart.modules.{folder}", f"smart.modules.{folder}.module"):
            raise  # the module exists but something it imports does not: say so, do not hide it
        return None
    for _, value in inspect.getmembers(loaded, inspect.isclass):
        if (
            issubclass(value, framework.StationModule)
            and value.__module__ == loaded.__name__
            and not inspect.isabstract(value)
        ):
            return value
    return None


async def decide(
    station: framework.StationContext,
    name: str,
    module: framework.StationModule | None,
    event: framework.ModuleEvent,
) -> tuple[framework.ModuleDecision, ledger.Entry]:
    """Have ``module`` decide ``event`` and record the decision; on the ledger when this returns.

    The same in the station's process and in a module's own one: a module that is not running,
    or that raises, is a deny naming it (fail closed), recorded like any other decision.
    """
    if module is None:
        reason = engine.Reason(
            "station.module-not-running",
            f"module {name} does not run at {station.station}",
            MappingProxyType({"module": name}),
        )
        decision = framework.ModuleDecision(module=name, outcome="deny", reasons=(reason,))
    else:
        try:
            decision = await module.handle(event)
        except Exception as err:  # fail closed: a module that breaks never lets work through
            log.exception("station.module_failed", station=station.station, module=name, verb=event.verb)
            reason = engine.Reason(
                f"{name}.failed",
                f"module {name} failed on {event.verb}: {type(err).__name__}: {err}",
                MappingProxyType({"module": name, "verb": event.verb}),
            )
            revisions: Mapping[str, str] = {}
            with contextlib.suppress(Exception):
                revisions = {a.contract: a.revision for a in await station.active_revisions()}
            decision = framework.ModuleDecision(
                module=name, outcome="deny", reasons=(reason,), revisions=revisions
            )
    happened = event.event
    entry = await station.record(
        kind=DECISION_KIND,
        subject=happened.job or happened.person or happened.action,
        data={
            "verb": event.verb,
            "action": happened.action,
            "event": records.plain(happened),
            **decision.to_json(),
        },
        actor=happened.person or station.station,
        revisions=decision.revisions or None,
    )
    return decision, entry
