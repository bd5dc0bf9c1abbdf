"""The node agent of one station: mirror, verify, activate, decide, record, ship, report.

It starts enforcing from its local store before it has any connection, so a
station that reboots with every hub down is back deciding in about a second.
The connection to the station's own leaf nats-server is then made (and
remade) in the background: the leaf mirrors the hub's buckets into the
station's JetStream domain, the agent watches those mirrors and activates
each new contract revision whose hub signature checks out; a revision that
does not check out is refused, recorded on the ledger and alerted, and the
previous one stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from smart import ledger
from smart.access import stationauth
from smart.bus import messages, mirror, subjects, witnessing
from smart.contracts import bundle as contract_bundle
from smart.contracts import engine
from smart.contracts import facts as f
from smart.keys import KeyFileError, KeyStore, VerifyingKey
from smart.ledger.checkpoint import CheckpointError, SignedCheckpoint
from smart.ledger.hub_store import ORIGIN as LEDGER_ORIGIN
from smart.ledger.witness import Witness
from smart.node import metrics as station_metrics
from smart.node import shipping
from smart.node.enforcement import StationDecision, StationEnforcer
from smart.node.store import MirrorUpdate, StationStore

log = structlog.get_logger("smart.node")

HUB_KEY_NAME = "hub"
#: How often a station re-checks its own node log (from the last entry found sound).
SELF_CHECK_S = 3600.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Where a station's agent keeps its data and whom it talks to."""

    station: str
    leaf_url: str
    data_dir: Path
    keys: KeyStore
    heartbeat_s: float = 2.0
    ship_batch: int = 1000


class NodeAgent:
    """One station's agent; ``await start()``, then ``decide(...)`` any time, ``await stop()`` at the end."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.station = config.station
        self.enforcer = StationEnforcer(config.station)
        self.store: StationStore | None = None
        self.ledger: ledger.NodeLog | None = None
        self.connection: NatsClient | None = None
        self.connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._hub_key: VerifyingKey | None = None
        self._shipper: shipping.Shipper | None = None
        #: The station's open ledger alarms (shipping blocked, a witness refusal, a bad entry of its
        #: own log), by key: shown in its status and heartbeat, alerted on its alert board.
        self.ledger_alarms: dict[str, dict[str, Any]] = {}
        self._mirror_lag: int | None = None
        self._witness: Witness | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The station's Prometheus figures (served on ``/metrics`` by the station's web app).
        self.metrics = station_metrics.StationMetrics(config.station)
        self.metrics.read_state(self.figures)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        data = self.config.data_dir
        # The node log's writer lock first: a second agent of this station (the systemd fallback and
        # the pods both present) raises NodeLogBusy here, before it has opened anything else.
        self.ledger = ledger.NodeLog.open(data / "ledger", node=self.station, keys=self.config.keys)
        self.store = StationStore(data / "store.sqlite3")
        self._shipper = shipping.Shipper(
            station=self.station,
            node_log=self.ledger,
            store=self.store,
            batch=self.config.ship_batch,
            on_blocked=self._on_ledger_blocked,
        )
        self._hub_key = self._load_hub_key()
        if self._hub_key is not None:
            self._witness = Witness(
                self.config.keys.signing_key(witnessing.witness_name(self.station)),
                log_key=self._hub_key,
                origin=LEDGER_ORIGIN,
                state_path=data / "witness.json",
            )
        self._restore_from_store()
        self._tasks.append(asyncio.create_task(self._stay_connected(), name=f"leaf-{self.station}"))
        self._tasks.append(asyncio.create_task(self._check_own_ledger(), name=f"self-check-{self.station}"))

    async def stop(self) -> None:
        """Stop every task (each given a few seconds), close the connection, the ledger and the store."""
        self._stopping = True
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self.connection is not None:
            try:
                await asyncio.wait_for(self.connection.close(), timeout=5)
            except asyncio.CancelledError:
                # nats-py's close can raise the cancellation of its own reconnect work; only a
                # cancellation of this stop itself goes on, and the ledger and store still close.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    self._close_files()
                    raise
            except Exception:
                pass  # closing a connection that is already gone
            self.connection = None
        for task in self._tasks:  # started while this stop was cancelling the others (a reconnect)
            task.cancel()
        self._tasks = []
        self._close_files()

    def _close_files(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def _load_hub_key(self) -> VerifyingKey | None:
        """The hub's public key is the station's trust anchor: provisioned with it, never taken from KV."""
        try:
            return self.config.keys.verifying_key(HUB_KEY_NAME)
        except KeyFileError as err:
            log.error("node.no_hub_key", station=self.station, error=str(err))
            return None

    def _restore_from_store(self) -> None:
        """Put in force each revision the store says is active, re-verified (the disk is not trusted)."""
        assert self.store is not None
        for active in self.store.active():
            try:
                self.enforcer.activate(self._verified_evaluator(active.envelope))
            except contract_bundle.BundleError as err:
                log.error(
                    "node.stored_revision_refused",
                    station=self.station,
                    contract=active.contract,
                    revision=active.revision,
                    error=str(err),
                )
        log.info("node.restored", station=self.station, revisions=self.enforcer.revisions)

    def _verified_evaluator(self, envelope: bytes) -> engine.Evaluator:
        if self._hub_key is None:
            self._hub_key = self._load_hub_key()  # provisioned after this agent started
        if self._hub_key is None:
            raise contract_bundle.BundleError("the hub's public key is not provisioned on this station")
        signed = contract_bundle.verify(envelope, self._hub_key)
        if signed.station != self.station:
            raise contract_bundle.BundleError(
                f"bundle {signed.short_revision} is for station {signed.station}, not {self.station}"
            )
        return engine.evaluator(signed.bundle, signed.revision)

    # -- deciding ---------------------------------------------------------------------------

    def decide(self, event: f.Event, facts: f.Facts, *, actor: str | None = None) -> StationDecision:
        """Judge ``event`` against every active revision and record the decision durably."""
        assert self.ledger is not None
        started = time.perf_counter()
        decision = self.enforcer.decide(event, facts)
        self.record(
            kind="gate.decision",
            subject=event.job or event.person or event.action,
            data={"action": event.action, **decision.to_json()},
            actor=actor or event.person or self.station,
            revisions=decision.revisions,
        )
        self.metrics.observe(station_metrics.STATION_MODULE, time.perf_counter() - started)
        return decision

    async def _on_decide_request(self, message: Msg) -> None:
        """The station's decision service on its own leaf: answered from local state, hub or no hub.

        The reply comes only after the decision is durable on the station's ledger, and names the
        entry, so a caller holding a reply knows the station cannot lose it.
        """
        try:
            body = json.loads(message.data)
            event = f.event_from_json(body["event"])
            facts = f.facts_from_json(body.get("facts", {}))
        except (ValueError, KeyError, TypeError) as err:
            await message.respond(json.dumps({"error": f"not a decision request: {err}"}).encode())
            return
        if event.station != self.station:
            wrong = {"error": f"event is for station {event.station}, this is {self.station}"}
            await message.respond(json.dumps(wrong).encode())
            return
        decision = self.decide(event, facts, actor=body.get("actor"))
        assert self.ledger is not None
        answer: dict[str, Any] = {"decision": decision.to_json(), "entry": self.ledger.size() - 1}
        await message.respond(json.dumps(answer).encode())

    def record(
        self,
        *,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        revisions: Mapping[str, str] | None = None,
    ) -> ledger.Entry:
        assert self.ledger is not None
        in_force = revisions if revisions is not None else self.enforcer.revisions
        contract = ",".join(f"{name}@{rev}" for name, rev in sorted(in_force.items())) or None
        entry = self.ledger.append(kind=kind, subject=subject, data=data, actor=actor, contract=contract)
        self.metrics.decided(kind, data)  # once durable: a module in its own process is counted here too
        return entry

    # -- contracts from the mirror ----------------------------------------------------------

    def apply_contract_value(self, key: str, revision: int, value: bytes | None) -> None:
        """Handle one change of this station's contract key in the mirrored bucket."""
        assert self.store is not None
        bucket = subjects.CONTRACTS_BUCKET
        if not self.store.is_newer(bucket, key, revision):
            return
        update = MirrorUpdate(bucket, key, revision, value)
        contract = subjects.contract_from_key(self.station, key)
        if contract is None:
            self.store.put_mirrored(bucket, key, revision, value)
            return
        if value is None:
            previous = self.store.deactivate(contract, mirrored=update)
            self.enforcer.retire(contract)
            if previous is not None:
                self.record(
                    kind="contract.retired",
                    subject=contract,
                    data={"contract": contract, "previous": previous},
                    actor=self.station,
                )
            return
        try:
            evaluator = self._verified_evaluator(value)
        except (contract_bundle.BundleError, ValueError, KeyError) as err:
            self.store.put_mirrored(bucket, key, revision, value)
            self._refuse(contract, value, str(err))
            return
        if self.enforcer.revisions.get(contract) == evaluator.revision:
            self.store.put_mirrored(bucket, key, revision, value)
            return
        previous = self.store.activate(contract, evaluator.revision, envelope=value, mirrored=update)
        self.enforcer.activate(evaluator)
        self.record(
            kind="contract.activated",
            subject=contract,
            data={"contract": contract, "revision": evaluator.revision, "previous": previous},
            actor=self.station,
        )
        log.info(
            "node.contract_activated",
            station=self.station,
            contract=contract,
            revision=evaluator.revision[:12],
            previous=previous[:12] if previous else None,
        )

    def _refuse(self, contract: str, envelope: bytes, reason: str) -> None:
        assert self.store is not None
        try:
            revision = str(json.loads(envelope).get("revision", "unknown"))
        except ValueError:
            revision = "unreadable"
        self.store.record_revision(contract, revision, envelope, refused=reason)
        self.record(
            kind="contract.refused",
            subject=contract,
            data={"contract": contract, "revision": revision, "reason": reason},
            actor=self.station,
        )
        log.error(
            "node.contract_refused",
            station=self.station,
            contract=contract,
            revision=revision[:12],
            reason=reason,
            kept=self.enforcer.revisions.get(contract, "")[:12] or None,
        )
        self._alert("contract.refused", f"contract {contract} revision {revision[:12]} refused: {reason}")

    def _alert(self, kind: str, message: str, *, severity: str = "high") -> None:
        """Tell the station's alert listeners (stack light, buzzer, hub); best effort, never blocking."""
        if self.connection is None or not self.connection.is_connected:
            return
        payload = json.dumps(
            {"station": self.station, "kind": kind, "message": message, "severity": severity}
        )
        connection = self.connection

        def publish() -> None:
            self._tasks.append(
                asyncio.create_task(connection.publish(subjects.alert(self.station), payload.encode()))
            )

        assert self._loop is not None
        self._loop.call_soon_threadsafe(publish)  # callers may be on the store's worker thread

    # -- the connection to the station's leaf ------------------------------------------------

    async def _stay_connected(self) -> None:
        delay = 0.2
        while True:
            try:
                self.connection = await nats.connect(
                    self.config.leaf_url,
                    name=f"smart-node-{self.station}",
                    # Replies from the hub (ledger acks, its JetStream API) reach the leaf only on the
                    # station's own inbox prefix: its leaf's user at the hub may receive nothing else.
                    inbox_prefix=stationauth.inbox_prefix(self.station),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                )
                break
            except Exception as err:
                log.warning("node.leaf_unreachable", station=self.station, error=type(err).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        js = self.connection.jetstream()
        while True:  # the leaf's JetStream may still be starting, or busy: keep asking, never give up
            try:
                contracts = await mirror.mirror_bucket(
                    js, subjects.CONTRACTS_BUCKET, history=subjects.CONTRACTS_HISTORY
                )
                break
            except Exception as err:
                log.warning("node.mirror_not_ready", station=self.station, error=type(err).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)  # the leaf is on this machine: asking again is cheap
        if self._stopping:
            return
        self.connected.set()
        await self.connection.subscribe(subjects.decide(self.station), cb=self._on_decide_request)
        if self._witness is not None:
            await self.connection.subscribe(
                witnessing.witness_subject(self.station), cb=self._on_witness_request
            )
        self._tasks.append(asyncio.create_task(self._watch_contracts(contracts), name="watch-contracts"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        assert self._shipper is not None
        self._tasks.append(asyncio.create_task(self._shipper.run(self.connection), name="ship-ledger"))

    async def _watch_contracts(self, bucket: KeyValue) -> None:
        watcher = await bucket.watch(subjects.contract_key_filter(self.station), include_history=False)
        try:
            async for update in watcher:
                if update is None:  # end of the initial values
                    continue
                deleted = update.operation in ("DEL", "PURGE")
                self.apply_contract_value(
                    update.key, int(update.revision or 0), None if deleted else update.value
                )
        finally:  # on the agent's stop: the watch's consumer and its heartbeat tasks end with it
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it untyped

    # -- heartbeats and ledger shipping ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        assert self.ledger is not None and self._shipper is not None
        size = self.ledger.size()
        shipped = self._shipper.shipped_seq
        blocked = self._shipper.blocked
        return {
            "station": self.station,
            "revisions": self.enforcer.revisions,
            "ledger_size": size,
            "shipped_seq": shipped,
            "ledger_lag": size - 1 - shipped,
            "ledger_blocked": None if blocked is None else blocked.reason,
            "ledger_alarms": list(self.ledger_alarms.values()),
            "mirror_lag": self._mirror_lag,
            "ts": time.time(),
        }

    def figures(self) -> station_metrics.StationFigures | None:
        """The agent's state as the station's ``/metrics`` shows it; ``None`` while it is stopped."""
        node_log, shipper = self.ledger, self._shipper
        if node_log is None or shipper is None:
            return None
        return station_metrics.StationFigures(
            ledger_entries=node_log.size(),
            shipped_seq=shipper.shipped_seq,
            ledger_blocked=shipper.blocked is not None,
            ledger_alarms=len(self.ledger_alarms),
            mirror_lag=self._mirror_lag,
            revisions=len(self.enforcer.revisions),
            connected=self.connection is not None and self.connection.is_connected,
        )

    async def _measure_mirror_lag(self, connection: NatsClient) -> int | None:
        """How many messages the station's mirrors of hub buckets are behind the hub, all together.

        Each mirror stream on the leaf knows its lag (what the hub's stream holds that the mirror
        has not taken yet, as of their last contact); ``None`` if the leaf cannot say.
        """
        try:
            streams = await connection.jetstream().streams_info()
        except Exception:
            return None
        return sum(info.mirror.lag or 0 for info in streams if info.mirror is not None)

    async def _heartbeat(self) -> None:
        while True:
            connection = self.connection  # None once stop() has closed it: the heartbeat ends
            if connection is None:
                return
            if connection.is_connected:
                self._mirror_lag = await self._measure_mirror_lag(connection)
                with contextlib.suppress(Exception):
                    await connection.publish(
                        subjects.heartbeat(self.station), messages.heartbeat_bytes(self.status())
                    )
            await asyncio.sleep(self.config.heartbeat_s)

    async def _on_witness_request(self, message: Msg) -> None:
        """Cosign the hub's checkpoint if it extends what this station saw; refuse (and say why) if not.

        Every checkpoint the hub offers is judged: a smaller tree than the largest this station
        cosigned (a hub restored from an older backup), or one with no consistency proof from
        it, is refused, alarmed here (ledger, alert board) and answered with the station's own
        cosigned checkpoint as evidence, so the hub raises the alarm too.
        """
        assert self._witness is not None
        witness = self._witness
        try:
            request = witnessing.WitnessRequest.from_bytes(message.data)
            signed = SignedCheckpoint.parse(request.checkpoint)
            latest = witness.latest
            offered = signed.checkpoint.size
            if latest is not None and latest.size != request.old_size and offered >= latest.size:
                self.metrics.witnessed("seen")
                await message.respond(witnessing.seen(latest.size))
                return
            signature = witness.cosign(signed, request.proof)
        except (CheckpointError, ValueError, KeyError) as err:
            self.metrics.witnessed("refused")
            self.ledger_alarm(
                "ledger-witness",
                kind="ledger.witness_refused",
                message=f"hub checkpoint refused: {err}",
                data={"reason": str(err), "cosigned_size": witness.latest.size if witness.latest else None},
            )
            await message.respond(witnessing.refused(str(err), evidence=witness.note))
            return
        self.metrics.witnessed("cosigned")
        self.ledger_alarm_cleared("ledger-witness", kind="ledger.witness_agreed")
        await message.respond(witnessing.cosigned(signature.line()))

    # -- ledger alarms: shipping blocked, witness refusals, the self-check ----------------------

    def _on_ledger_blocked(self, blocked: shipping.Blocked | None) -> None:
        """The hub refused this station's ledger (or took it again): record, alert, keep enforcing."""
        if blocked is None:
            self.ledger_alarm_cleared("ledger-shipping", kind="ledger.shipping_resumed")
            return
        self.ledger_alarm(
            "ledger-shipping",
            kind="ledger.shipping_blocked",
            message=f"the hub refuses this station's ledger ({blocked.kind}): {blocked.reason}",
            data={"kind": blocked.kind, "alarm": blocked.alarm, "reason": blocked.reason},
        )

    def ledger_alarm(self, key: str, *, kind: str, message: str, data: Mapping[str, Any]) -> None:
        """Raise a ledger alarm at this station: on its own ledger, its status, and its alert board.

        The alert board (the alert-broadcast module, when running) shows it on the kiosk and
        turns the stack light amber; without it the alert still goes on ``station.<id>.alert``.
        Enforcing goes on: the station records locally whatever the hub does.
        """
        before = self.ledger_alarms.get(key)
        if before is not None and before["message"] == message:
            return  # the same cause seen again: recorded and alerted already
        self.ledger_alarms[key] = {"key": key, "kind": kind, "message": message, "since": time.time()}
        self.record(kind=kind, subject=key, data={"message": message, **data}, actor=self.station)
        log.error("node.ledger_alarm", station=self.station, alarm=key, kind=kind, message=message)
        self._board("raise", {"severity": "warning", "source": "ledger", "message": message, "key": key})

    def ledger_alarm_cleared(self, key: str, *, kind: str) -> None:
        if self.ledger_alarms.pop(key, None) is None:
            return
        self.record(kind=kind, subject=key, data={}, actor=self.station)
        log.info("node.ledger_alarm_cleared", station=self.station, alarm=key)
        self._board("clear", {"id": key})

    def _board(self, verb: str, body: dict[str, Any]) -> None:
        """Ask the station's alert board (``station.<id>.alert-broadcast.<verb>``) once the leaf is up."""
        if self._loop is None:
            return
        event = {"action": f"alert.{verb}", "at": datetime.now(UTC).isoformat(), "station": self.station}
        request = json.dumps({"event": event, "body": body}).encode()

        async def ask() -> None:
            await self.connected.wait()  # an alarm of the start-up check waits for the leaf
            connection = self.connection
            if connection is None:
                return
            try:
                await connection.request(
                    subjects.station_subject(self.station, "alert-broadcast", verb), request, timeout=2
                )
            except Exception:  # no board running: the plain alert subject still says it
                if verb == "raise":
                    self._alert(str(body.get("key")), str(body.get("message")), severity="warning")

        def start() -> None:
            self._tasks.append(asyncio.create_task(ask()))

        self._loop.call_soon_threadsafe(start)

    # -- the station's own check of its ledger -------------------------------------------------

    async def _check_own_ledger(self) -> None:
        """Re-derive the station's own node log on start (all of it: the disk is not trusted across
        a restart) and then every ``SELF_CHECK_S`` from the last entry found sound; alarm on the
        first bad entry (an entry edited in the SQLite file after it was written or shipped)."""
        node_log = self.ledger
        assert node_log is not None
        verified, last_hash = -1, ledger.GENESIS
        while True:
            try:
                found = await asyncio.to_thread(node_log.check, verified + 1, last_hash)
            except (ledger.NodeLogError, sqlite3.Error) as err:
                found = ledger.ChainCheck(verified, last_hash, f"the node log cannot be read: {err}")
            if found.problem is None:
                verified, last_hash = found.verified, found.last_hash
                log.info("node.ledger_self_check", station=self.station, verified=verified)
            else:
                self.ledger_alarm(
                    "ledger-self-check",
                    kind="ledger.self_check_failed",
                    message=f"this station's own ledger is damaged: {found.problem}",
                    data={"problem": found.problem, "verified_through": found.verified},
                )
            await asyncio.sleep(SELF_CHECK_S)
