"""A station at work: the node agent, the station's records and the modules its contracts ask for.

:class:`StationRuntime` composes a :class:`~smart.node.agent.NodeAgent`
(contracts mirrored, verified and activated; the ledger; the leaf
connection) with the station's records (:mod:`smart.node.records`) and runs
in-process every module the active contracts name, plus every module that
enforces a kind of rule they carry, so no rule goes unenforced, plus the
modules whose manifest says ``everyStation`` (the station's own
infrastructure) once it holds a contract. It is the
modules' :class:`~smart.modules.framework.StationContext`: facts from the
records, judgements by the active revisions restricted to one module's
rules, appends to the ledger, publishes on the leaf.

On the leaf each running module answers ``station.<id>.<module>.<verb>``
(request/reply JSON ``{"event": <facts.Event JSON>, "body": {...}}``). The
runtime records the decision (``module.decision``, with the contract
revisions, the event and every reason) durably *before* it replies with
``ModuleDecision.to_json()`` plus ``"entry"``, the decision's ``node_seq``.
A request that cannot be read gets ``{"error": ...}`` and nothing is
recorded as decided; a module that raises is a deny naming the module (fail
closed), recorded like any other. The job state machine (:mod:`.job`)
answers ``station.<id>.job.<verb>`` on the same leaf.

Records the hub owns reach the station through the ``station-records``
bucket, mirrored into the station's own JetStream domain like the contracts
and materialised here, each change recorded (``record.received``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from smart import ledger
from smart.bus import messages, mirror
from smart.contracts import engine, rules
from smart.contracts import facts as f
from smart.contracts.decisions import ModuleAnswer, StationDecision
from smart.modules import framework, rulebound
from smart.node import job, ports, records
from smart.node.agent import NodeAgent
from smart.node.badges import StationBadges
from smart.node.deciding import DECISION_KIND, RequestError, decide, module_class, parse_request
from smart.node.metrics import StationFigures
from smart.runtime.nats import HUB_DOMAIN

if TYPE_CHECKING:
    from smart.modules.safety.interlock import Interlock

log = structlog.get_logger("smart.node.station")


def modules_of(bundle: Mapping[str, Any]) -> set[str]:
    """The modules a bundle needs at its station: those it names and those enforcing its rules."""
    named = {str(m) for m in bundle.get("modules", ())}
    for rule in bundle.get("rules", ()):
        kind = rules.RULE_KINDS.get(str(rule.get("kind")))
        if kind is not None:
            named.add(kind.module)
    return named


class StationRuntime:
    """One station: ``await start()``, modules answer on the leaf, ``await stop()`` at the end.

    ``agent`` is the station's node agent (started here if it is not yet); the records live in
    ``records_path`` (default: ``records.sqlite3`` beside the agent's store).
    """

    def __init__(
        self,
        agent: NodeAgent,
        *,
        records_path: Path | None = None,
        manifests: Mapping[str, framework.ModuleManifest] | None = None,
        request_timeout_s: float = 5.0,
        interlock: Interlock | None = None,
        hosted: Collection[str] | None = None,
    ) -> None:
        self.agent = agent
        self.station = agent.station
        self.records_path = records_path or agent.config.data_dir / "records.sqlite3"
        self.manifests = manifests if manifests is not None else framework.load_manifests()
        self.request_timeout_s = request_timeout_s
        #: The relay the gate drives (energised while the current job's gate allowed), if the station has one.
        self.interlock = interlock
        self.records: records.StationRecords | None = None
        #: SMART-ID's signed badges as this station holds them (the Gatekeeper verifies them offline).
        self.badges: StationBadges | None = None
        self.modules: dict[str, framework.StationModule] = {}
        #: The modules this process runs in-process (None: all the contracts need); others run as
        #: processes of their own (``smart module run``) and reach the station through the ports.
        self.hosted = None if hosted is None else frozenset(hosted)
        #: What the modules see of the station, here with no bus hop; served on the leaf for the rest.
        self.ports = ports.LocalPorts(self)
        self.jobs = job.JobMachine(self)
        self.ready = asyncio.Event()
        self._subscriptions: dict[str, Subscription] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._revisions: Mapping[str, str] | None = None
        self._lock = asyncio.Lock()
        self._wanted: frozenset[str] = frozenset()
        agent.metrics.add_state(self._figures)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.agent.ledger is None:
            await self.agent.start()
        self.records = records.StationRecords(self.records_path)
        assert self.agent.store is not None
        self.badges = StationBadges(self.station, self.agent.store)
        self.jobs.restore()
        await self.reconcile_modules()  # from the store: modules run before any connection
        task = asyncio.create_task(self._on_leaf(), name=f"station-{self.station}")
        task.add_done_callback(self._report_end)
        self._tasks.append(task)

    def _report_end(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("station.leaf_task_failed", station=self.station, error=repr(task.exception()))

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for name in list(self.modules):
            await self._stop_module(name)
        for subscription in list(self._subscriptions.values()):
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()
        await self.agent.stop()
        if self.records is not None:
            self.records.close()
            self.records = None

    async def _on_leaf(self) -> None:
        await self.agent.connected.wait()
        connection = self.agent.connection
        assert connection is not None
        js = connection.jetstream()
        delay = 0.2
        while True:
            try:
                bucket = await mirror.mirror_bucket(js, records.RECORDS_BUCKET)
                break
            except Exception as err:  # the leaf busy or restarting: the station decides from what it holds
                log.warning("station.records_mirror_failed", station=self.station, error=type(err).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._tasks.append(asyncio.create_task(self._watch_records(bucket), name="watch-records"))
        assert self.badges is not None
        for name in self.badges.buckets:
            self._tasks.append(asyncio.create_task(self._watch_access(js, name), name=f"watch-{name}"))
        self._subscriptions["job"] = await connection.subscribe(
            framework.subject(self.station, "job", "*"), cb=self._on_job_request
        )
        self._subscriptions[ports.PORTS] = await ports.serve(connection, self.ports)
        for name in self.modules:
            await self._subscribe(name)
        await connection.flush()  # the leaf knows every subscription before anyone is told we are ready
        self.ready.set()
        renewed = 0.0
        loop = asyncio.get_running_loop()
        while True:  # a new contract revision may ask for other modules; the relay's lease is renewed
            await asyncio.sleep(0.1)
            if self.agent.enforcer.revisions != self._revisions:
                await self.reconcile_modules()
            if self.interlock is not None and loop.time() - renewed >= self.interlock.lease_s / 3:
                renewed = loop.time()
                self.jobs.renew_interlock()

    def status(self) -> dict[str, Any]:
        """The agent's status with the modules running and where the job stands (kiosk, heartbeat)."""
        interlock = self.interlock.state if self.interlock is not None else None
        return {
            **self.agent.status(),
            "modules": sorted(self.modules),
            "serving": self.serving(),
            "job": self.jobs.status(),
            "interlock": None
            if interlock is None
            else {"energised": interlock.energised, "reason": interlock.reason, "job": interlock.job},
        }

    # -- modules -----------------------------------------------------------------------------

    def wanted_modules(self) -> set[str]:
        """Every module the active revisions need here (read from the verified envelopes in the store)."""
        store = self.agent.store
        if store is None:
            return set()
        wanted: set[str] = set()
        labels: dict[str, str] = {}
        held = store.active()
        for active in held:
            bundle = json.loads(active.envelope)["bundle"]
            wanted |= modules_of(bundle)
            labels.update(bundle.get("stationLabels") or {})
        if held:  # the station's own infrastructure, whatever the contracts list (none without one)
            wanted |= {n for n, m in self.manifests.items() if m.every_station and m.may_run_on(labels)}
        return wanted

    def serving(self) -> bool:
        """Every module the active revisions need runs and answers on the leaf (benches wait on it)."""
        return (
            self.ready.is_set()
            and not self._lock.locked()
            and self._revisions == self.agent.enforcer.revisions
            and set(self.modules) <= set(self._subscriptions)
            and ports.PORTS in self._subscriptions
        )

    async def reconcile_modules(self) -> None:
        """Start the modules the active contracts need and stop those they no longer do."""
        async with self._lock:
            self._revisions = dict(self.agent.enforcer.revisions)
            wanted = self.wanted_modules()
            self._wanted = frozenset(wanted)
            if self.hosted is not None:
                wanted &= self.hosted
            for name in sorted(set(self.modules) - wanted):
                await self._stop_module(name)
            for name in sorted(wanted - set(self.modules)):
                await self._start_module(name)

    async def _start_module(self, name: str) -> None:
        manifest = self.manifests.get(name)
        if manifest is None:
            log.error("station.module_unknown", station=self.station, module=name)
            return
        cls = module_class(name)
        if cls is None:
            if not manifest.rule_kinds:
                log.info("station.module_not_in_process", station=self.station, module=name)
                return
            cls = rulebound.RuleBoundModule  # its rules are still enforced, by the generic module
        try:
            module = cls(self.ports, manifest)
            await module.start()
        except Exception as err:  # its subjects stay unanswered, so whatever asks it is refused
            log.exception("station.module_failed_to_start", station=self.station, module=name)
            self.agent.record(
                kind="module.failed",
                subject=name,
                data={"module": name, "error": f"{type(err).__name__}: {err}"},
                actor=self.station,
            )
            return
        self.modules[name] = module
        connection = self.agent.connection
        if connection is not None and connection.is_connected and self.ready.is_set():
            await self._subscribe(name)
            await connection.flush()
        log.info("station.module_started", station=self.station, module=name, implementation=cls.__name__)

    async def _stop_module(self, name: str) -> None:
        subscription = self._subscriptions.pop(name, None)
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            # Until the leaf has the UNSUB it may still route a request to this queue member, whose
            # answer would never come (the client drops it): the asker would wait out its timeout
            # while another host of the module (its own process) was ready to answer.
            connection = self.agent.connection
            if connection is not None and connection.is_connected:
                with contextlib.suppress(Exception):
                    await connection.flush(timeout=10)
        module = self.modules.pop(name, None)
        if module is not None:
            with contextlib.suppress(Exception):
                await module.stop()

    async def _subscribe(self, name: str) -> None:
        connection = self.agent.connection
        assert connection is not None
        if name in self._subscriptions:
            return

        async def on_request(message: Msg) -> None:
            await self._on_module_request(name, message)

        self._subscriptions[name] = await connection.subscribe(
            framework.subject(self.station, name, "*"),
            queue=f"station.{self.station}.{name}",  # one decision per request, however often hosted
            cb=on_request,
        )

    async def _on_module_request(self, name: str, message: Msg) -> None:
        verb = message.subject.rsplit(".", 1)[-1]
        try:
            event, body = parse_request(self.station, message.data)
        except RequestError as err:
            await message.respond(messages.module_error(f"{name}.{verb}: {err}"))
            return
        decision, entry = await self.handle(name, framework.ModuleEvent(verb, event, MappingProxyType(body)))
        await message.respond(messages.module_reply(decision.to_json(), entry=entry.node_seq))

    async def handle(
        self, name: str, event: framework.ModuleEvent
    ) -> tuple[framework.ModuleDecision, ledger.Entry]:
        """Have module ``name`` decide ``event``; the decision is on the ledger when this returns."""
        started = time.perf_counter()
        answer = await decide(self.ports, name, self.modules.get(name), event)
        self.agent.metrics.observe(name, time.perf_counter() - started)
        return answer

    def _figures(self, figures: StationFigures) -> StationFigures:
        """The interlock, the NCRs open on the station's jobs and the modules, for ``/metrics``."""
        return dataclasses.replace(
            figures,
            interlock_energised=None if self.interlock is None else self.interlock.state.energised,
            ncrs_open=None if self.records is None else self.records.ncrs_open,
            modules=len(self.modules),
        )

    # -- what the ports call (LocalPorts) ------------------------------------------------------

    def facts(self) -> f.Facts:
        assert self.records is not None
        return self.records.facts()

    def judge(self, event: f.Event, *, module: str) -> StationDecision:
        return self.agent.enforcer.decide(event, self.facts(), module=module)

    def judge_kinds(self, event: f.Event, *, kinds: Collection[str]) -> StationDecision:
        return self.agent.enforcer.decide(event, self.facts(), kinds=kinds)

    def record(
        self,
        *,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        revisions: Mapping[str, str] | None = None,
    ) -> ledger.Entry:
        entry = self.agent.record(kind=kind, subject=subject, data=data, actor=actor, revisions=revisions)
        if kind.startswith("qa.ncr."):
            self._note_ncr(data)
        return entry

    async def publish(self, subject: str, body: Mapping[str, Any]) -> None:
        connection = self.agent.connection
        if connection is None or not connection.is_connected:
            log.warning("station.publish_dropped", station=self.station, subject=subject)
            return
        await connection.publish(subject, json.dumps(dict(body), default=str).encode())

    @property
    def data_dir(self) -> Path:
        """The station's own directory (store, ledger, records; the folder of scanned images)."""
        return self.agent.config.data_dir

    async def request(self, subject: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A request on the station's own leaf (a module asking the job machine, as a kiosk would)."""
        connection = self.agent.connection
        if connection is None or not connection.is_connected:
            raise ConnectionError(f"the bus of station {self.station} is not connected")
        reply = await connection.request(
            subject, json.dumps(dict(body), default=str).encode(), timeout=self.request_timeout_s * 3
        )
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    # -- records -----------------------------------------------------------------------------

    def keep(self, kind: str, record: Any, *, actor: str) -> None:
        """Write a local record durably and put it on the ledger (``record.<kind>``)."""
        assert self.records is not None
        self.records.put(kind, record)
        self.agent.record(
            kind=f"record.{kind}",
            subject=records.fact_key(kind, record),
            data={"kind": kind, "value": records.plain(record)},
            actor=actor,
        )

    def jobs_served_by(self, equipment: str, *, since: datetime | None) -> list[str]:
        """Jobs whose allowed module decisions named ``equipment`` at or after ``since`` (from the ledger)."""
        assert self.agent.ledger is not None
        found: list[str] = []
        for entry in self.agent.ledger.entries(0):
            if entry.kind != DECISION_KIND or entry.data.get("outcome") == "deny":
                continue
            happened = entry.data.get("event") or {}
            job_id = happened.get("job")
            if not job_id or equipment not in (happened.get("equipment") or ()) or job_id in found:
                continue
            if since is None or datetime.fromisoformat(happened["at"]) >= since:
                found.append(job_id)
        return found

    def held(self, kind: str, key: str) -> Any | None:
        assert self.records is not None
        return self.records.get(kind, key)

    def _note_ncr(self, data: Mapping[str, Any]) -> None:
        """QA opened or dispositioned an NCR: the job's record carries it (the Guardian reads it)."""
        job_id, ncr_id = data.get("job"), data.get("id")
        if not isinstance(job_id, str) or not isinstance(ncr_id, str) or self.records is None:
            return
        current = self.records.job(job_id) or f.Job(id=job_id)
        ncr = f.Ncr(
            id=ncr_id,
            open=bool(data.get("open", True)),
            disposition=data.get("disposition"),
            design_authority_approval=data.get("designAuthorityApproval"),
        )
        others = tuple(n for n in current.ncrs if n.id != ncr_id)
        self.records.put("job", dataclasses.replace(current, ncrs=(*others, ncr)))

    async def _watch_records(self, bucket: KeyValue) -> None:
        watcher = await bucket.watch(f"{self.station}.>", include_history=False)
        async for update in watcher:
            if update is None:
                continue
            deleted = update.operation in ("DEL", "PURGE")
            applied = self.apply_record(
                update.key, int(update.revision or 0), None if deleted else update.value
            )
            if applied is not None and applied[0] == "ncr-decision" and not deleted:
                await self._hub_ncr_decision(applied[1])

    async def _hub_ncr_decision(self, ncr_id: str) -> None:
        """The hub decided one of this station's NCRs: QA applies it and records it as its own would be."""
        assert self.records is not None
        decision = self.records.get("ncr-decision", ncr_id)
        if not isinstance(decision, f.NcrDecision):
            return
        event = f.Event(
            action="hub-decision", at=decision.decided_at, station=self.station, person=decision.decided_by
        )
        reply = await self.ask("qa", "hub-decision", event, {"ncr": ncr_id})
        if reply.allowed and reply.effects.get("open") is False:
            await self.ask("alert-broadcast", "clear", event, {"id": ncr_id})

    async def _watch_access(self, js: Any, name: str) -> None:
        """Mirror one SMART-ID bucket once the hub has it, and keep each change.

        A mirror made before its hub stream exists waits on the server's own
        retry backoff, so the bucket is looked up at the hub first (a floor
        without SMART-ID never makes it, and the station then holds none).
        """
        connection = self.agent.connection
        assert connection is not None
        hub_js = connection.jetstream(domain=HUB_DOMAIN)
        delay = 0.2
        while True:
            try:
                try:
                    await js.stream_info(mirror.stream_name(name))
                except nats.js.errors.NotFoundError:
                    await hub_js.stream_info(mirror.stream_name(name))  # not there yet: raises
                bucket = await mirror.mirror_bucket(js, name)
                watcher = await bucket.watch(">", include_history=False)
                break
            except Exception:  # not published yet, or the hub out of reach: the store still applies
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)  # SMART-ID may publish any moment: look again soon
        async for update in watcher:
            if update is None or self.badges is None:
                continue
            deleted = update.operation in ("DEL", "PURGE")
            value = None if deleted else update.value
            if self.badges.apply(name, update.key, int(update.revision or 0), value):
                self.agent.record(
                    kind="access.received",
                    subject=f"{name}/{update.key}",
                    data={"bucket": name, "key": update.key, "revision": update.revision, "deleted": deleted},
                    actor=self.station,
                )

    def apply_record(self, key: str, revision: int, value: bytes | None) -> tuple[str, str] | None:
        """One change of the mirrored ``station-records`` bucket, materialised and recorded (kind, id)."""
        assert self.records is not None
        try:
            applied = self.records.apply_hub(self.station, key, revision, value)
        except records.RecordError as err:
            self.agent.record(
                kind="record.refused", subject=key, data={"key": key, "reason": str(err)}, actor=self.station
            )
            log.error("station.record_refused", station=self.station, key=key, error=str(err))
            return None
        if applied is None:
            return None
        kind, record_id = applied
        data: dict[str, Any] = {"kind": kind, "id": record_id, "revision": revision, "deleted": value is None}
        if value is not None:
            data["value"] = json.loads(value)
        self.agent.record(
            kind="record.received", subject=f"{kind}/{record_id}", data=data, actor=self.station
        )
        return applied

    # -- the job state machine ---------------------------------------------------------------

    async def _on_job_request(self, message: Msg) -> None:
        verb = message.subject.rsplit(".", 1)[-1]
        try:
            value = json.loads(message.data or b"{}")
            if not isinstance(value, dict):
                raise RequestError("expected a JSON object")
            reply = await self.jobs.request(verb, value)
        except (RequestError, ValueError) as err:
            reply = {"error": f"job.{verb}: {err}", "state": self.jobs.state.value}
        await message.respond(json.dumps(reply, default=str).encode())

    async def ask(
        self, module: str, verb: str, event: f.Event, body: Mapping[str, Any] | None = None
    ) -> ModuleAnswer:
        """Ask ``module`` over the station's own subject; a module that does not answer is a deny.

        The reply is read once, here (:func:`messages.read_module_reply`); the job machine holds
        the typed answer.
        """
        connection = self.agent.connection
        request = json.dumps({"event": records.plain(event), "body": dict(body or {})}).encode()
        if connection is None or not connection.is_connected:
            return _unanswered(module, f"the station's bus is not connected; {module} cannot be asked")
        try:
            reply = await connection.request(
                framework.subject(self.station, module, verb), request, timeout=self.request_timeout_s
            )
        except Exception as err:
            return _unanswered(module, f"{module} did not answer {verb}: {type(err).__name__}")
        try:
            return messages.read_module_reply(reply.data)
        except messages.MessageError as err:
            return _unanswered(module, f"{module} refused the request: {err}")

    def revision_text(self) -> str | None:
        """The revisions in force as one string (``contract@revision,…``), as the ledger names them."""
        revisions = self.agent.enforcer.revisions
        return ",".join(f"{name}@{rev}" for name, rev in sorted(revisions.items())) or None

    def badged_in(self) -> str | None:
        """The badge the job machine let in and that is at the station now (QA's dispositions ask)."""
        return self.jobs.session.person

    def running(self, names: Sequence[str]) -> list[str]:
        """Of ``names``, the modules that answer here: run in-process, or needed and left to their own
        processes (``hosted``), which the job machine asks over the bus like the others (one that does
        not answer is a deny)."""
        return [
            name
            for name in names
            if name in self.modules
            or (self.hosted is not None and name not in self.hosted and name in self._wanted)
        ]


def _unanswered(module: str, message: str) -> ModuleAnswer:
    reason = engine.Reason("station.module-unanswered", message, MappingProxyType({"module": module}))
    return ModuleAnswer(module=module, outcome="deny", reasons=(reason,))
