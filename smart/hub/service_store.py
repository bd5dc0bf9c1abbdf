"""What every hub work service's store shares: a small pool of app-role connections and its ledger node.

ClientManager and Travelers each change their own schema in one transaction and record the change on
their own ledger node (:mod:`smart.hub.service_log`) inside it, so a refused change writes neither; the
pool, the transaction and the recording are the same for both, and live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import psycopg
import structlog
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from smart.hub.service_log import ServiceLedger

log = structlog.get_logger("smart.hub.service_store")


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServiceStore:
    """A work service's store: its connection pool, its ledger node and its clock (tests set one)."""

    #: How the service names its ledger lines in the logs (``client_manager.recorded``).
    log_name: ClassVar[str]

    def __init__(
        self, url: str, *, ledger: ServiceLedger, clock: Callable[[], datetime] = utc_now, pool_size: int
    ) -> None:
        self.pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.Connection[DictRow],
            open=True,
        )
        self.ledger = ledger
        self.clock = clock

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def _changing(self) -> Iterator[psycopg.Connection[DictRow]]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def _record(self, kind: str, subject: str, actor: str, **data: Any) -> None:
        entry = self.ledger.append(kind=kind, subject=subject, data=data, actor=actor)
        log.info(f"{self.log_name}.recorded", kind=kind, subject=subject, actor=actor, entry=entry.node_seq)
