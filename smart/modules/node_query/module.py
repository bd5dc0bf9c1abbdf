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

from typing import Protocol, runtime_checkable

from smart.contracts import engine
from smart.modules import framework
from smart.modules.node_query import answers, speech
from smart.node.agent import NodeAgent


@runtime_checkable
class HoldsAgent(Protocol):
    """A station whose node agent (store and ledger) a module may read (the node's runtime)."""

    agent: NodeAgent


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
        if not isinstance(self.station, HoldsAgent):
            return self._refuse("store", "this station has no node-local store to answer from")
        agent = self.station.agent
        if agent.store is None or agent.ledger is None:
            return self._refuse("store", "the station's store is not open")
        local = answers.Local(
            station=agent.station, store=agent.store, log=agent.ledger, facts=self.station.facts()
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
