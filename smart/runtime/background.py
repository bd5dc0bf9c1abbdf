"""A floor running in a background thread, for tests and benchmarks that drive it from plain code.

It runs the very same ``Floor`` and ``Supervisor`` as ``smart up``, on an
event loop of its own, so synchronous test code can start servers, kill one
and watch the supervisor bring it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from smart.runtime.floor import Floor
from smart.secret_files import secret
from smart.settings import DRIVER_NATS_PASSWORD_FILE, DRIVER_NATS_USER, Settings

T = TypeVar("T")


class BackgroundFloor:
    def __init__(self, settings: Settings, *, postgres: bool = True, nats_servers: bool = True) -> None:
        self.settings = settings
        self.floor = Floor(settings, postgres=postgres, nats_servers=nats_servers)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smart-floor", daemon=True)

    @property
    def hub_url(self) -> str:
        """The hub nats-server's URL signed in as the driver; a floor without NATS servers has none.

        The hub refuses a connection without credentials, and tests and benches pass this URL where
        a URL is all a command takes (``SMART_NATS_URL``); ``floor.hub.url`` is the bare address.
        """
        if self.floor.hub is None:
            raise RuntimeError("this floor was started without NATS servers: it has no hub")
        password = secret(self.settings.secrets_directory / DRIVER_NATS_PASSWORD_FILE)
        hub = self.floor.hub
        return f"nats://{quote(DRIVER_NATS_USER, safe='')}:{quote(password, safe='')}@{hub.host}:{hub.port}"

    def start(self, timeout: float = 60.0) -> BackgroundFloor:
        self.floor.preflight()
        self._thread.start()
        self.run(self.floor.start(), timeout=timeout)
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the floor's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.run(self.floor.stop(), timeout=60.0)
            self.run(self._cancel_the_rest(), timeout=10.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    @staticmethod
    async def _cancel_the_rest() -> None:
        """Cancel what tests started on this loop (web servers, watchers) so nothing leaks."""
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __enter__(self) -> BackgroundFloor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def temporary_floor(
    progress: Callable[[str], None], *, prefix: str, postgres: bool = True, nats_servers: bool = True
) -> Iterator[tuple[BackgroundFloor, Path]]:
    """A floor of one station on free ports in a temporary directory, for a ``smart bench`` run.

    Yields the started floor and a scratch directory beside its state (removed with it). What a
    bench needs says which servers: PostgreSQL only for the benches that read the database, the
    hub nats-server and pt-1's leaf for those that ship or mirror.
    """
    from smart.runtime import ports

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        settings = Settings(
            state_dir=Path(tmp) / "state",
            stations=1,
            web_port=ports.free_port(),
            postgres_port=ports.free_port(),
            nats_port=ports.free_port(),
            nats_leaf_port=ports.free_port(),
            nats_monitor_port=ports.free_port(),
            station_nats_port_base=ports.free_block(1),
            station_monitor_port_base=ports.free_block(1),
            station_web_port_base=ports.free_block(1),
        )
        servers = {"PostgreSQL": postgres, "hub nats-server and pt-1 leaf": nats_servers}
        progress(f"starting a temporary {', '.join(name for name, on in servers.items() if on)} …")
        with BackgroundFloor(settings, postgres=postgres, nats_servers=nats_servers) as floor:
            yield floor, Path(tmp)
