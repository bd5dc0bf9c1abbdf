"""kmock with one more trait of a real API server: every write gives the object a new resourceVersion.

kopf tells its own patches' echoes from newer events by resourceVersion; kmock keeps whatever the
client sent, so every event looks equally fresh and, under load, kopf re-handles stale bodies (an
edit handled over and over against an old last-handled annotation). Stamping a counter on each
create and patch, as the API server does, gives kopf what it relies on; and a JSON patch whose
``test`` of the resourceVersion fails is answered 422, as the API server does (kopf then tries
again on the next cycle with a fresh body, instead of resending the stale patch).

A test can also make the emulator refuse some calls (``refuse``), as an API server does when RBAC
or an admission plugin says no, to see what the operator does when a cluster write fails.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl as ssl_
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import jsonpatch
import kmock
import kopf
import pytest
from kmock._internal import enums, references, rendering

from smart.keys import KeyStore
from smart.operator import handlers
from smart.runtime.background import BackgroundFloor
from smart.testing.patience import STATE_DEADLINE_S


class VersionedEmulator(kmock.KubernetesEmulator):
    _versions = itertools.count(1000)
    #: (HTTP method, path) pairs answered 403 while present.
    refused: set[tuple[str, str]]

    def refuse(self, method: str, path: str) -> None:
        if not hasattr(self, "refused"):
            self.refused = set()
        self.refused.add((method.upper(), path))

    def allow(self, method: str, path: str) -> None:
        getattr(self, "refused", set()).discard((method.upper(), path))

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """The namespace list and watch, which kmock cannot parse (its path parser expects a name).

        kopf lists and watches namespaces when it is told which ones to serve, as deployed
        (``-n smart``): the emulator answers with the one namespace and records the call.
        """
        if raw_request.path != "/api/v1/namespaces":
            return await super().__call__(raw_request)
        watching = raw_request.query.get("watch") == "true"
        self._requests.append(
            rendering.Request(
                method=raw_request.method,
                url=raw_request.url,
                params=dict(raw_request.query),
                headers=dict(raw_request.headers),
                action=enums.action.WATCH if watching else enums.action.LIST,
                resource=references.resource("", "v1", "namespaces"),
            )
        )
        if not watching:
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "NamespaceList",
                    "metadata": {"resourceVersion": "1"},
                    "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}],
                }
            )
        response = aiohttp.web.StreamResponse()
        await response.prepare(raw_request)
        await asyncio.sleep(float(raw_request.query.get("timeoutSeconds", "1")))  # nothing changes
        await response.write_eof()
        return response

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if (str(request.method.value).upper(), request.url.path) in getattr(self, "refused", set()):
            return aiohttp.web.json_response(
                {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}, status=403
            )
        writes = (enums.action.CREATE, enums.action.UPDATE)
        if request.resource is not None and request.action in writes:
            version = str(next(self._versions))
            if isinstance(request.data, dict):
                request.data.setdefault("metadata", {})["resourceVersion"] = version
            elif isinstance(request.data, list):  # a JSON patch: its test ops are checked first
                request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as err:  # a stale resourceVersion: 422, as a real server says
            return aiohttp.web.json_response(
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Invalid",
                    "code": 422,
                    "message": str(err),
                },
                status=422,
            )


NS = "smart"
CONTRACTS = f"/apis/smart.aero/v1alpha1/namespaces/{NS}/smartcontracts"
STATIONS = f"/apis/smart.aero/v1alpha1/namespaces/{NS}/stations"
DAEMONSETS = f"/apis/apps/v1/namespaces/{NS}/daemonsets"


class LoopThread:
    """Runs ``main(stopping)`` on an event loop of its own, in a thread, until :meth:`stop`.

    For what is another process on a floor (a station's agent, the hub's intake): kopf, when it
    stops, cancels every task started on its loop after it started (it cannot tell them from its
    own), so these would die with the first operator if they shared the test's loop.
    """

    def __init__(self, main: Callable[[asyncio.Event, threading.Event], Awaitable[None]]) -> None:
        self.main = main
        self.started = threading.Event()
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self.thread.start()
        assert self.started.wait(60), f"did not start: {self.error!r}"

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        try:
            await self.main(self.stopping, self.started)
        except BaseException as err:
            self.error = err
            raise

    def stop(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            return
        assert self.loop is not None and self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(60)


class Api:
    """Plain HTTP to the emulator, as kubectl would talk to an API server; ``stop`` ends the operator."""

    def __init__(
        self,
        url: str,
        stop: Callable[[], Awaitable[None]],
        task: asyncio.Task[None] | None = None,
        ssl: ssl_.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.stop = stop
        self.ssl: ssl_.SSLContext | bool = ssl if ssl is not None else True
        self.task: asyncio.Task[None] = task or asyncio.get_running_loop().create_future()  # type: ignore[assignment]

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, json=body, headers=headers, ssl=self.ssl) as response,
        ):
            return await response.json(content_type=None) if response.status < 400 else None

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def items(self, path: str) -> list[dict[str, Any]]:
        found = await self.get(path)
        return list(found["items"]) if found else []


async def eventually(what: Callable[[], Awaitable[Any]], *, patience: float = STATE_DEADLINE_S) -> Any:
    """Wait until ``what`` returns something truthy (a wait, not a timed assertion)."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        value = await what()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the expected state never came")
        await asyncio.sleep(0.1)


NODES = "/api/v1/nodes"


def declare(emulator: kmock.KubernetesEmulator) -> None:
    verbs = {"list", "watch", "get", "patch", "create", "delete", "update"}
    info = kmock.ResourceInfo
    emulator.resources["smart.aero/v1alpha1/smartcontracts"] = info(
        kind="SmartContract", namespaced=True, verbs=verbs, subresources={"status"}, shortnames={"smc"}
    )
    emulator.resources["smart.aero/v1alpha1/stations"] = info(
        kind="Station", namespaced=True, verbs=verbs, subresources={"status"}, shortnames={"sst"}
    )
    emulator.resources["smart.aero/v1alpha1/contractapprovals"] = info(
        kind="ContractApproval", namespaced=True, verbs=verbs, subresources={"status"}, shortnames={"sca"}
    )
    emulator.resources["apps/v1/daemonsets"] = info(kind="DaemonSet", namespaced=True, verbs=verbs)
    emulator.resources["v1/events"] = info(kind="Event", namespaced=True, verbs=verbs)
    emulator.resources["v1/namespaces"] = info(kind="Namespace", namespaced=False, verbs=verbs)
    emulator.resources["v1/nodes"] = info(kind="Node", namespaced=False, verbs=verbs)
    emulator.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = info(
        kind="CustomResourceDefinition", namespaced=False, verbs=verbs
    )
    # The Pi nodes the stations bind to, as the shop labels them, and one node of no station.
    for sid in ("pt-1", "mt-1", "ut-1", "sr-1", "ht-1"):
        emulator.objects["v1/nodes", None, f"pi-{sid}"] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": f"pi-{sid}", "labels": {"smart.aero/station": sid}},
        }
    emulator.objects["v1/nodes", None, "hub-1"] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "hub-1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
    }


@pytest.fixture
def operator_env() -> dict[str, str]:
    """More ``SMART_*`` settings for the operator; a test parametrizes this to change one."""
    return {}


Starter = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start_operator(
    kmock: kmock.KubernetesEmulator,
    nats_floor: BackgroundFloor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    operator_env: dict[str, str],
) -> AsyncIterator[Starter]:
    """Starts the operator (again, after a stop: a restart) on the same state, keys and cluster."""
    declare(kmock)
    # These tests' clusters are seeded by creating SmartContracts: first revisions on the bootstrap
    # (tests/operator/test_operator.py shows a new contract held without it).
    monkeypatch.setenv("SMART_CONTRACT_BOOTSTRAP", "true")
    for variable, value in operator_env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("SMART_KUBE_SERVER", str(kmock.url))
    monkeypatch.setenv("SMART_NATS_URL", nats_floor.hub_url)
    monkeypatch.setenv("SMART_STATE_DIR", str(tmp_path / "operator"))
    monkeypatch.setenv("SMART_KEYS_DIR", str(tmp_path / "keys"))
    KeyStore(tmp_path / "keys").signing_key("hub")  # provisioned, as the hub's key always is
    running: list[Api] = []

    async def start(
        *,
        namespaces: list[str] | None = None,
        url: str | None = None,
        ssl: ssl_.SSLContext | None = None,
        liveness: str | None = None,
    ) -> Api:
        stop = asyncio.Event()
        ready = asyncio.Event()
        settings = kopf.OperatorSettings()
        settings.watching.server_timeout = 1  # kmock's watch streams never end by themselves
        settings.watching.client_timeout = 2
        # kopf, once its own tasks have stopped, waits 5 s for every task made on its loop after it
        # started and then cancels them: it takes them for its handlers. The task that stops it (the
        # test, or this fixture's finalizer, a task pytest-asyncio makes at teardown) is one of them,
        # and it waits on kopf, so every stop took 5 s and ended by kopf cancelling the stopper.
        # ``kopf.operator`` is kopf's spawn_tasks + run_tasks with the tasks that were there before
        # it as the ones left alone; here that set also takes the task that stops it.
        not_kopfs: set[asyncio.Task[Any]] = set()

        async def run() -> None:
            not_kopfs.update(asyncio.all_tasks())
            tasks = await kopf.spawn_tasks(
                clusterwide=not namespaces,
                namespaces=namespaces or (),
                standalone=True,
                stop_flag=stop,
                ready_flag=ready,
                settings=settings,
                registry=handlers.registry(),
                liveness_endpoint=liveness,
            )
            await kopf.run_tasks(tasks, ignored=not_kopfs)

        task = asyncio.create_task(run())
        await asyncio.wait_for(ready.wait(), 60)

        async def stop_operator() -> None:
            stopper = asyncio.current_task()
            assert stopper is not None
            not_kopfs.add(stopper)
            stop.set()
            await asyncio.wait_for(task, STATE_DEADLINE_S)  # well under 1 s idle; far longer loaded

        api = Api(url or str(kmock.url), stop_operator, task, ssl)
        running.append(api)
        return api

    try:
        yield start
    finally:
        for api in running:
            if not api.task.done():
                await api.stop()


@pytest.fixture
async def operator(start_operator: Starter) -> Api:
    return await start_operator()


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """The operator's tests run against the versioned emulator."""
    return {**kmock_options, "cls": VersionedEmulator}
