"""A station agent whose leaf answers before its JetStream does keeps asking, and connects when it can."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smart.keys import KeyStore
from smart.node.agent import AgentConfig, NodeAgent
from smart.runtime import nats as nats_config
from smart.runtime.ports import free_port
from tests.node.conftest import eventually


@contextmanager
def nats_server(port: int, *, jetstream_dir: Path | None) -> Iterator[None]:
    args = [str(nats_config.server_binary()), "-a", "127.0.0.1", "-p", str(port)]
    if jetstream_dir is not None:
        args += ["-js", "-sd", str(jetstream_dir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


async def test_agent_retries_the_mirror_until_the_leaf_has_jetstream(tmp_path: Path) -> None:
    port = free_port()
    agent = NodeAgent(
        AgentConfig(
            station="pt-1",
            leaf_url=f"nats://127.0.0.1:{port}",
            data_dir=tmp_path / "pt-1",
            keys=KeyStore(tmp_path / "keys"),
        )
    )
    with nats_server(port, jetstream_dir=None):  # up, but no JetStream: the mirror cannot be made
        await asyncio.sleep(0.3)
        await agent.start()
        try:
            await asyncio.sleep(2.5)
            assert not agent.connected.is_set()
        except BaseException:
            await agent.stop()
            raise
    try:
        with nats_server(port, jetstream_dir=tmp_path / "js"):  # the same address, now with JetStream
            await eventually(lambda: agent.connected.is_set(), what="agent connected")
    finally:
        await agent.stop()
