"""AuditCentral's one entry point: bring the index up to date, build a packet, prove it, render it.

The CLI (``smart audit …``), the hub pages and the bench call these, so a
packet is the same whichever way it is asked for. Reads only: AuditCentral
never writes the log; its index table is append-only and re-derivable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from smart.hub.audit import clientproof, impact, index, proofs, render
from smart.hub.audit import packet as packets
from smart.keys import VerifyingKey
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import Trust


@dataclass(frozen=True, slots=True)
class Rendered:
    packet: packets.Packet
    html: str
    appendix: bytes
    proof_size: int


class SharedIndex:
    """One index follower for many requests: its cursor stays where the last pass stopped, so a request
    reads only what the log added since (a fresh follower would scan from the last indexed entry)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._index: index.AuditIndex | None = None
        self._lock = threading.Lock()

    def refresh(self) -> int:
        with self._lock:
            if self._index is None or self._index.conn.closed or self._index.conn.broken:
                self._index = index.AuditIndex.connect(self.url)
            return self._index.index_once()

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


class AuditCentral:
    """One database connection (app role), the log's public key, the contracts directory for intervals."""

    def __init__(
        self,
        url: str,
        *,
        log_key: VerifyingKey,
        admin: VerifyingKey | None = None,
        contracts_dir: Path | None = None,
        shared_index: SharedIndex | None = None,
    ) -> None:
        self.url = url
        self.log_key = log_key
        #: The administrator's public key: only the witnesses it established are named in bundles.
        self.admin = admin
        self.contracts_dir = contracts_dir
        #: The index follower: the caller's long-lived one (its cursor survives between requests), or
        #: one of this object's own.
        self.shared = shared_index or SharedIndex(url)
        self._owns_index = shared_index is None
        self.conn: psycopg.Connection[Any] = psycopg.connect(index.schema_url(url), autocommit=True)

    def close(self) -> None:
        if self._owns_index:
            self.shared.close()
        self.conn.close()

    def refresh(self) -> int:
        """Index what the log added since the last look; how many references were new."""
        return self.shared.refresh()

    def packet(self, **asked: Any) -> packets.Packet:
        self.refresh()
        return packets.build(self.conn, contracts_dir=self.contracts_dir, **asked)

    def rendered(
        self,
        made: packets.Packet,
        *,
        min_cosignatures: int = 1,
        downloads: list[tuple[str, str]] | None = None,
    ) -> Rendered:
        hub = HubLog(self.conn, admin=self.admin)
        size = proofs.latest_cosigned_size(hub, min_cosignatures=min_cosignatures)
        appendix = proofs.appendix(hub, made.cited, packet=made.asked, log_key=self.log_key, size=size)
        note = hub.checkpoint(size).checkpoint
        checkpoint = f"{note.origin} size {note.size}"
        rows = render.cited_rows(self.conn, made)
        text = render.html(
            made,
            rows,
            appendix=appendix,
            appendix_name=f"{made.slug}-proofs.json",
            checkpoint=checkpoint,
            proof_size=size,
            downloads=downloads,
        )
        return Rendered(made, text, appendix, size)

    def impact(
        self, ref: str, *, since: datetime | None = None, method: str | None = None
    ) -> list[impact.Touched]:
        self.refresh()
        return impact.touched(self.conn, ref, since=since, method=method)

    def client_proof(self, made: packets.Packet, *, min_cosignatures: int = 1) -> clientproof.ClientProof:
        """The shipment's proof bundle and C of C facts, proved against the latest cosigned checkpoint."""
        hub = HubLog(self.conn, admin=self.admin)
        size = proofs.latest_cosigned_size(hub, min_cosignatures=min_cosignatures)
        return clientproof.client_proof(hub, made, log_key=self.log_key, size=size)

    def trust(self) -> Trust:
        """What the client's page and ``smart verify`` trust: the log's key and established witnesses."""
        return HubLog(self.conn, admin=self.admin).trust(self.log_key)
