"""The hub's ledger intake: station batches from JetStream into the global log, then witnessed.

Stations publish batches of their ledger to the hub's ``LEDGER`` stream
whenever they can reach it; this service takes them, in order, into the
PostgreSQL log (``HubLog.ingest_many``: exactly once per (node, node_seq), so
a batch delivered twice changes nothing; all batches of one fetch in one
transaction under one checkpoint, so a backlog drains fast) and acknowledges
each only after it is committed, so a crash of the intake loses nothing. After each round it
asks every station to witness the latest checkpoint, with a consistency
proof from the last checkpoint that station cosigned, and stores the
cosignatures it returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from smart.bus import receipts, subjects, witnessing
from smart.bus.receipts import Receipt
from smart.hub import metrics as intake_metrics
from smart.keys import KeyStore
from smart.ledger import Batch, BatchError
from smart.ledger.checkpoint import CheckpointError, NoteSignature, SignedCheckpoint
from smart.ledger.hub_store import (
    ChainGap,
    ForkAlarm,
    HubLog,
    Ingested,
    IngestError,
    LedgerBlocked,
    blocked_reason,
)
from smart.ledger.trust import ADMIN_KEY

log = structlog.get_logger("smart.hub.intake")

DURABLE = "ledger-intake"
#: How soon the intake tries again after its hub connection failed it. While the hub's NATS is away
#: a try costs one refused request; once it is back, every station's backlog waits for this.
RETRY_S = 0.1
T = TypeVar("T")


class LedgerIntake:
    """One intake loop; ``stations`` are the witnesses it asks to cosign."""

    def __init__(
        self,
        connection: NatsClient,
        hub_log: HubLog,
        *,
        stations: Sequence[str],
        fetch: int = 16,
        witness_timeout_s: float = 1.0,
        witness_every_s: float = 1.0,
    ) -> None:
        self.connection = connection
        self.hub_log = hub_log
        self.stations = list(stations)
        self.fetch = fetch
        self.witness_timeout_s = witness_timeout_s
        self.witness_every_s = witness_every_s
        self.ingested_batches = 0
        self.refused_batches = 0
        #: Each station whose last receipt was a refusal, with that receipt.
        self.blocked: dict[str, Receipt] = {}
        #: Each station's answer in the last witnessing round (``cosigned``, ``refused: …``, …).
        self.witness_outcomes: dict[str, str] = {}
        self._witnessed_size: int | None = None
        self._witness_alarms: dict[str, str] = {}
        self._answers: dict[str, Subscription] = {}
        self._collector_holds = 0
        self._collector_was_on = False
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        # One connection, one thread: the hub log's calls never overlap.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-intake")
        # Reading a fetch's batches (every entry parsed and checked) is the intake's heaviest Python
        # work: off the event loop, which also carries the NATS traffic (and, on one machine, the
        # stations'), and beside the database thread, so one fetch is read while the last is written.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-intake-read")
        #: The intake's Prometheus figures (served by the hub web app's ``/metrics``).
        self.metrics = intake_metrics.IntakeMetrics()
        for station in self.stations:
            self.metrics.blocked.labels(station).set(0)

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def metrics_text(self) -> bytes:
        """The intake's figures, the open alarms read now (on the intake's own database thread)."""
        try:
            open_alarms = await self._db(lambda: len(self.hub_log.ledger_alarms(open_only=True)))
        except Exception as err:  # the database away: the counters still say what they know
            log.warning("intake.metrics_alarms_unread", error=type(err).__name__)
        else:
            self.metrics.alarms_open.set(open_alarms)
        return self.metrics.text()

    def close(self) -> None:
        self._reader.shutdown(wait=True)
        self._executor.shutdown(wait=True)

    async def run(self) -> None:
        """Take batches until cancelled or the connection is closed for good.

        A hub NATS outage only pauses it (the consumer is durable); a connection its owner closed
        will not come back, so the intake ends instead of retrying it forever.
        """
        while not self.connection.is_closed:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if self.connection.is_connected:  # not just the hub being away: say so
                    log.warning("intake.paused", error=type(err).__name__, detail=str(err)[:200])
                else:
                    log.debug("intake.waiting_for_hub", error=type(err).__name__)
                await asyncio.sleep(RETRY_S)

    async def _consume(self) -> None:
        js = self.connection.jetstream()
        subscription = await js.pull_subscribe(
            subjects.LEDGER_SUBJECTS, durable=DURABLE, stream=subjects.LEDGER_STREAM
        )
        pending_witness, last_witness = False, 0.0
        # While one fetch is in the database, the next is fetched and parsed: the two overlap.
        in_db: tuple[list[Msg], asyncio.Future[list[Ingested | IngestError]]] | None = None
        try:
            while True:
                try:
                    messages = await subscription.fetch(self.fetch, timeout=0.2)
                except (nats.errors.TimeoutError, TimeoutError):
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():  # nats-py turned our cancel into
                        raise asyncio.CancelledError from None  # a fetch timeout: stop, as asked
                    messages = []
                if messages:
                    self._hold_collector()
                readable, batches = await self._parse(messages)
                if messages and not batches:
                    self._release_collector()
                new_entries = await self._settle(*in_db) if in_db is not None else 0
                if in_db is not None:
                    self._release_collector()
                in_db = None
                if batches:
                    loop = asyncio.get_running_loop()
                    in_db = (
                        readable,
                        loop.run_in_executor(self._executor, self.hub_log.ingest_many, batches),
                    )
                pending_witness = pending_witness or new_entries > 0
                # Witness at most every ``witness_every_s`` while batches pour in (a backlog after an
                # outage), and as soon as the stream is drained: the latest checkpoint is what counts.
                # Also at start and whenever the latest checkpoint is not yet cosigned by every
                # station (another writer signed it, a station was away): every checkpoint gets its
                # round, and a hub restored from an older backup is shown to its witnesses at once.
                due = time.monotonic() - last_witness >= self.witness_every_s
                drained = not messages or due
                if in_db is None and drained and (pending_witness or (due and await self._unwitnessed())):
                    await self.witness_round()
                    pending_witness, last_witness = False, time.monotonic()
        finally:
            try:
                if in_db is not None:  # let the database finish; unacknowledged batches come again
                    await asyncio.wait([in_db[1]])
            finally:
                while self._collector_holds:  # whatever ended the loop, the collector runs again
                    self._release_collector()

    def _hold_collector(self) -> None:
        """Hold CPython's cyclic garbage collector off from reading a fetch until it is ingested.

        A fetch of a backlog is tens of thousands of parsed entries, all kept until the database
        has them; every allocation burst made the collector traverse them again (half the time
        of reading them, measured; the rest of ingest paid it too once they lived on). They hold
        no reference cycles and reference counting frees them, so the collector runs again as
        soon as no fetch is in hand: while a backlog drains, and not otherwise.
        """
        if self._collector_holds == 0:
            self._collector_was_on = gc.isenabled()
            gc.disable()
        self._collector_holds += 1

    def _release_collector(self) -> None:
        self._collector_holds -= 1
        if self._collector_holds == 0 and self._collector_was_on:
            gc.enable()

    async def _parse(self, messages: Sequence[Msg]) -> tuple[list[Msg], list[Batch]]:
        """The batches in ``messages`` (and their messages); one that cannot be read is refused.

        Reading is where entries enter the hub: one that is not RFC 8785 canonical (a duplicated
        key, another number form, whitespace, key order) is refused here, with the reason
        recorded as an alarm and sent back to the station.
        """
        readable: list[Msg] = []
        batches: list[Batch] = []
        if not messages:
            return readable, batches
        loop = asyncio.get_running_loop()
        read = await loop.run_in_executor(self._reader, _read_batches, [m.data for m in messages])
        refused: dict[str, Receipt] = {}
        for message, outcome in zip(messages, read, strict=True):
            station = _station_of(message)
            if isinstance(outcome, Batch) and outcome.node != station:
                outcome = BatchError(f"a batch of {outcome.node} came on {station}'s subject")
            if isinstance(outcome, BatchError):
                refused[station] = await self._refuse(message, station, outcome, raise_alarm=True)
            elif station in refused:  # after a refused batch of its station: judged again once re-sent
                await message.term()
            else:
                batches.append(outcome)
                readable.append(message)
        for receipt in refused.values():
            await self._send_receipt(receipt)
        return readable, batches

    async def _settle(
        self, messages: Sequence[Msg], ingesting: Awaitable[list[Ingested | IngestError]]
    ) -> int:
        """Once the batches of ``messages`` are committed (or refused), ack or terminate each, and
        send each station its receipt: how much of its ledger the hub now holds, or why not."""
        outcomes = await ingesting
        new_entries = 0
        answers: dict[str, Receipt] = {}
        for message, outcome in zip(messages, outcomes, strict=True):
            station = _station_of(message)
            if isinstance(outcome, ChainGap):
                # The hub lacks earlier entries (a batch lost or refused before): the station re-ships.
                log.info("intake.batch_early", station=station, detail=str(outcome))
                await message.term()
                self.metrics.refusals.labels(station, "gap").inc()
                if station not in answers or answers[station].status == "accepted":
                    answers[station] = Receipt(station, "gap", -1, str(outcome), "gap")
            elif isinstance(outcome, IngestError):
                answers[station] = await self._refuse(message, station, outcome, raise_alarm=False)
            else:
                await message.ack()
                self.ingested_batches += 1
                new_entries += outcome.count
                self.metrics.batches.labels(station).inc()
                self.metrics.entries.labels(station).inc(outcome.count)
                answers.setdefault(station, Receipt(station, "accepted", -1))
                log.debug(
                    "intake.batch_ingested",
                    node=outcome.node,
                    first_index=outcome.first_index,
                    count=outcome.count,
                )
        for receipt in answers.values():
            await self._send_receipt(receipt)
        return new_entries

    async def _refuse(self, message: Msg, station: str, err: Exception, *, raise_alarm: bool) -> Receipt:
        """A batch that can never be taken as it is: not redelivered; an alarm if none was raised yet.

        A fork alarm is raised by the hub log itself; a batch that could not be read (not
        canonical, not well-formed) is recorded here. Either blocks the station's ledger until
        an administrator decides; the station is told, and alerts.
        """
        self.refused_batches += 1
        kind = (
            "fork"
            if isinstance(err, ForkAlarm)
            else "blocked"
            if isinstance(err, LedgerBlocked)
            else "refused"
        )
        alarm: int | None = None
        if raise_alarm:
            open_alarm = (await self._db(self.hub_log.blocking_alarms, [station])).get(station)
            if open_alarm is not None:  # already blocked: one alarm per cause, not one per batch
                err, kind, raise_alarm = LedgerBlocked(blocked_reason(open_alarm)), "blocked", False
                alarm = open_alarm.id
        if raise_alarm:
            first = _first_seq(message)
            alarm = await self._db(self.hub_log.raise_alarm, station, first, "refused", str(err))
        elif isinstance(err, ForkAlarm):
            alarm = _alarm_number(str(err))
        elif not isinstance(err, LedgerBlocked):  # a bad head: the station's key or log is wrong
            alarm = await self._db(
                self.hub_log.raise_alarm, station, _first_seq(message), "refused", str(err)
            )
        log.error("intake.batch_refused", station=station, kind=kind, alarm=alarm, error=str(err))
        self.metrics.refusals.labels(station, kind).inc()
        if isinstance(err, ForkAlarm):  # raised by the hub log as it found the fork
            self.metrics.alarms_raised.labels("fork").inc()
        elif raise_alarm or not isinstance(err, LedgerBlocked):
            self.metrics.alarms_raised.labels("refused").inc()
        await message.term()
        return Receipt(station, "refused", -1, str(err), kind, alarm)

    async def _send_receipt(self, receipt: Receipt) -> None:
        """Tell the station how much of its ledger the hub holds (best effort: it re-ships if none comes)."""
        try:
            hub_has = await self._db(self.hub_log.node_size, receipt.station)
            sent = dataclasses.replace(receipt, hub_has=hub_has)
            await self.connection.publish(receipts.receipt_subject(receipt.station), sent.to_bytes())
        except (nats.errors.Error, OSError) as err:
            log.warning("intake.receipt_not_sent", station=receipt.station, error=str(err))
            return
        if receipt.status == "refused":
            self.blocked[receipt.station] = sent
        else:
            self.blocked.pop(receipt.station, None)
        self.metrics.blocked.labels(receipt.station).set(1 if receipt.station in self.blocked else 0)

    async def _unwitnessed(self) -> bool:
        """Whether the latest checkpoint still lacks a station's answer (cosigned or refused)."""
        size = await self._db(self.hub_log.size)
        if size == 0:
            return False
        return self._witnessed_size != size or any(
            outcome not in ("cosigned",) and not outcome.startswith("refused")
            for outcome in self.witness_outcomes.values()
        )

    async def witness_round(self) -> dict[str, str]:
        """Ask every station to cosign the latest checkpoint; returns each station's outcome."""
        size = await self._db(self.hub_log.size)
        outcomes = await asyncio.gather(*(self._witness(station) for station in self.stations))
        self.witness_outcomes = dict(zip(self.stations, outcomes, strict=True))
        self._witnessed_size = size
        self.metrics.checkpoint_size.set(size)
        for station, outcome in self.witness_outcomes.items():
            self.metrics.witness_rounds.labels(station, intake_metrics.witness_outcome(outcome)).inc()
        return self.witness_outcomes

    async def _witness(self, station: str) -> str:
        try:
            # On the intake's one database thread, as every other use of its connection: the round
            # asks all stations at once, and their reads must not share the connection across threads.
            signed = await self._db(self.hub_log.checkpoint)
            old_size = await self._db(self._last_cosigned_size, station)
            size = signed.checkpoint.size
            proof = await self._db(self.hub_log.consistency_proof, old_size, size) if old_size else []
        except CheckpointError as err:
            return f"no checkpoint: {err}"
        answer = await self._ask(station, witnessing.WitnessRequest(signed.text(), old_size, tuple(proof)))
        if answer is not None and "seen_size" in answer and int(answer["seen_size"]) < size:
            # The station cosigned a size we did not store (our request timed out after it signed).
            seen = int(answer["seen_size"])
            proof = await self._db(self.hub_log.consistency_proof, seen, size) if seen else []
            answer = await self._ask(station, witnessing.WitnessRequest(signed.text(), seen, tuple(proof)))
        if answer is None:
            return "unreachable"
        if "seen_size" in answer:
            seen = int(answer["seen_size"])
            reason = f"the station cosigned size {seen}; the hub's latest checkpoint is size {size}"
            await self._witness_alarm(station, size, reason, None)
            return f"refused: {reason}"
        if "refused" in answer:
            await self._witness_alarm(station, size, str(answer["refused"]), answer.get("evidence"))
            return f"refused: {answer['refused']}"
        self._witness_alarms.pop(station, None)
        line = SignedCheckpoint.parse(signed.checkpoint.body().decode() + "\n" + answer["cosignature"])
        signature: NoteSignature = line.signatures[0]
        try:
            await self._db(self.hub_log.add_cosignature, size, signature)
        except CheckpointError as err:
            log.error("intake.cosignature_refused", station=station, size=size, error=str(err))
            return f"bad cosignature: {err}"
        return "cosigned"

    async def _witness_alarm(self, station: str, size: int, reason: str, evidence: object) -> None:
        """A witness refused the hub's checkpoint: an alarm at the hub (once per cause), with the
        witness's own cosigned checkpoint as evidence (``smart ledger verify`` checks and reports it)."""
        log.error("intake.witness_refused", station=station, size=size, reason=reason)
        if self._witness_alarms.get(station) == reason:
            return
        self._witness_alarms[station] = reason
        self.metrics.alarms_raised.labels("witness").inc()
        note = evidence.encode() if isinstance(evidence, str) else None
        await self._db(
            lambda: self.hub_log.raise_alarm(
                witnessing.witness_name(station), size, "witness", reason, offered=note
            )
        )

    async def _ask(self, station: str, request: witnessing.WitnessRequest) -> dict[str, Any] | None:
        """Ask ``station``; its answer comes on a subject of its own (``witnessing.answer_subject``).

        One subscription per station serves its requests, made before the first, so the hub's
        interest has reached the station's leaf well before it answers (a leaf learns only the
        interest its station may answer: ``station.<id>.…``, not a wildcard over stations).
        """
        if station not in self._answers:
            self._answers[station] = await self.connection.subscribe(
                witnessing.answer_subject(station, "*"), cb=self._on_answer
            )
            await self.connection.flush()
        token = secrets.token_hex(8)
        reply = witnessing.answer_subject(station, token)
        waiting = asyncio.get_running_loop().create_future()
        self._waiting[reply] = waiting
        try:
            await self.connection.publish(
                witnessing.witness_subject(station), request.to_bytes(), reply=reply
            )
            message = await asyncio.wait_for(waiting, self.witness_timeout_s)
        except (nats.errors.Error, TimeoutError):
            return None
        finally:
            self._waiting.pop(reply, None)
        if not message.data:  # the server's "no responders" status: the station is not listening
            return None
        answer: dict[str, Any] = json.loads(message.data)
        return answer

    async def _on_answer(self, message: Msg) -> None:
        waiting = self._waiting.get(message.subject)
        if waiting is not None and not waiting.done():
            waiting.set_result(message)

    def _last_cosigned_size(self, station: str) -> int:
        row = self.hub_log.conn.execute(
            "SELECT max(size) FROM ledger_cosignatures WHERE witness = %s",
            (witnessing.witness_name(station),),
        ).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0


def _station_of(message: Msg) -> str:
    """The station whose subject (``ledger.<id>.batch``) a batch came on: its leaf may publish no other."""
    parts = message.subject.split(".")
    return parts[1] if len(parts) == 3 else message.subject


def _first_seq(message: Msg) -> int:
    """The first node_seq a batch's message id names (``<id>:<first>-<last>…``), or -1."""
    msg_id = (message.headers or {}).get("Nats-Msg-Id", "")
    try:
        return int(msg_id.split(":", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return -1


def _alarm_number(text: str) -> int | None:
    """The alarm id in a fork alarm's message (``fork alarm #12: …``)."""
    head = text.split(":", 1)[0]
    number = head.rpartition("#")[2]
    return int(number) if number.isascii() and number.isdigit() else None


def _read_batches(payloads: Sequence[bytes]) -> list[Batch | BatchError]:
    """Each payload as a batch, or the reason it is not one."""
    read: list[Batch | BatchError] = []
    for payload in payloads:
        try:
            read.append(Batch.from_bytes(payload))
        except BatchError as err:
            read.append(err)
    return read


def register_stations(hub_log: HubLog, keys: KeyStore, stations: Sequence[str]) -> None:
    """Enrol stations with the hub log: each one's ledger key (its node) and its witness key.

    On one machine the hub and the stations share a keys directory, so the
    hub reads the public keys there, and the administrator's key
    (``ledger-admin``) that signs each registration; a station joining a real
    floor brings its public keys to the administrator instead. Only
    registrations that key signed are trusted (:mod:`smart.ledger.trust`).
    """
    admin = keys.signing_key(ADMIN_KEY)
    for station in stations:
        hub_log.register_node(station, keys.signing_key(station).verifying, admin=admin)
        hub_log.register_witness(keys.signing_key(witnessing.witness_name(station)).verifying, admin=admin)
