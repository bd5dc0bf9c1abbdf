"""NodeQuery: the station's questions answered over its own bus, from its own store, ledger and facts.

Verb ``ask``, body ``{"text": "why was the last operation refused", "badge": "op-7"}``
(the badge is the asker, optional): the typed question is read and answered
as :func:`smart.modules.node_query.speech.voice_answer` answers it (the
wake word optional), from the station's store, ledger and a snapshot of its
facts, with no hub. The answer (:meth:`Answer.to_json`) is in the
decision's effects under ``answer``. Spoken questions go through the same
function from the microphone loop; no audio travels on the bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smart import ledger
from smart.contracts import engine
from smart.modules import framework
from smart.modules.node_query import answers, speech

#: How far back (entries) an answer may read the ledger; answers read no further.
_LOOK_BACK = answers.LOOK_BACK


@dataclass(frozen=True, slots=True)
class _Held:
    """The station's revisions and shipped cursor as the ports gave them for one question."""

    held: Sequence[framework.HeldRevision]
    changes: Sequence[framework.RevisionChange]
    shipped: int

    def active(self) -> Sequence[framework.HeldRevision]:
        return self.held

    def history(self, contract: str | None = None) -> Sequence[framework.RevisionChange]:
        return [c for c in self.changes if contract is None or c.contract == contract]

    def shipped_seq(self, node: str) -> int:
        return self.shipped


@dataclass(frozen=True, slots=True)
class _Window:
    """The ledger's last entries (at most ``_LOOK_BACK``), read once for one question."""

    first: int
    size_: int
    held: Sequence[ledger.Entry]

    def size(self) -> int:
        return self.size_

    def entries(self, start: int, stop: int | None = None) -> Sequence[ledger.Entry]:
        stop = self.size_ if stop is None else min(stop, self.size_)
        start = max(start, self.first)
        return self.held[start - self.first : max(start, stop) - self.first]


class NodeQueryModule(framework.StationModule):
    """Verb ``ask``: a typed question, answered from what the station holds."""

    name = "node-query"

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb != "ask":
            return self._refuse("verb", f"node-query does not answer {event.verb!r}; it answers ask")
        text, badge = event.body.get("text"), event.body.get("badge")
        if not isinstance(text, str) or not text.strip():
            return self._refuse("request", "body.text: expected the question as text")
        if badge is not None and not isinstance(badge, str):
            return self._refuse("request", "body.badge: expected the asker's badge id")
        station = self.station
        size = await station.ledger_size()
        first = max(0, size - _LOOK_BACK)
        local = answers.Local(
            station=station.station,
            store=_Held(
                await station.active_revisions(),
                await station.revision_history(),
                await station.shipped_seq(),
            ),
            log=_Window(first, size, await station.entries(first, size)),
            facts=await station.facts(),
        )
        reply = speech.voice_answer(text, local=local, badge=badge or event.event.person, at=event.event.at)
        return framework.ModuleDecision(
            module=self.name,
            outcome="allow",
            effects={"heard": reply.heard, "answer": reply.answer.to_json()},
        )

    def _refuse(self, rule: str, message: str) -> framework.ModuleDecision:
        reason = engine.Reason(f"node-query.{rule}", message)
        return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))
