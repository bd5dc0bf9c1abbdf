"""The watcher: capture and decode in a thread, codes handed to the station's asyncio loop."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from smart.modules.vision import bench, codes, decode, sources, watcher

BADGE = "SMART:BADGE:B-1042"
PART = "SMART:PART:PO-4411:1:BRK-220:SN-002"


def drop(folder: Path, name: str, image: decode.Frame) -> Path:
    path = folder / name
    partial = folder / f".{name}.part.png"
    assert cv2.imwrite(str(partial), image)
    os.replace(partial, path)
    return path


async def test_a_dropped_image_reaches_the_station_loop_as_a_parsed_code(tmp_path: Path) -> None:
    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    async with watcher.Watcher(sources.FolderSource(tmp_path), queue, poll_s=0.02) as watching:
        assert watching.running
        drop(tmp_path, "badge.png", bench.qr_frame(BADGE, angle=15.0, noise=12.0, blur=5))
        sighting = await asyncio.wait_for(queue.get(), timeout=10)
    assert sighting.code == codes.Badge("B-1042")
    assert sighting.text == BADGE
    assert sighting.decoder == "pyzbar"
    assert sighting.error is None
    assert sighting.origin.endswith("badge.png")
    assert not watching.running


async def test_images_are_delivered_in_the_order_they_were_dropped(tmp_path: Path) -> None:
    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    async with watcher.Watcher(sources.FolderSource(tmp_path), queue, poll_s=0.02):
        drop(tmp_path, "1.png", bench.qr_frame(BADGE))
        first = await asyncio.wait_for(queue.get(), timeout=10)
        drop(tmp_path, "2.png", bench.qr_frame(PART))
        second = await asyncio.wait_for(queue.get(), timeout=10)
    assert [first.code, second.code] == [
        codes.Badge("B-1042"),
        codes.Part("PO-4411", "1", "BRK-220", "SN-002"),
    ]


async def test_an_unreadable_image_and_a_foreign_code_come_with_the_reason(tmp_path: Path) -> None:
    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    async with watcher.Watcher(sources.FolderSource(tmp_path), queue, poll_s=0.02):
        drop(tmp_path, "blank.png", np.full((480, 640, 3), 200, np.uint8))
        blank = await asyncio.wait_for(queue.get(), timeout=10)
        drop(tmp_path, "menu.png", bench.qr_frame("https://canteen.example/menu"))
        foreign = await asyncio.wait_for(queue.get(), timeout=10)
    assert blank.code is None and blank.error is not None and "no code could be read" in blank.error
    assert foreign.code is None and foreign.text == "https://canteen.example/menu"
    assert foreign.error is not None and "not a SMART code" in foreign.error


async def test_a_callback_runs_on_the_event_loop_thread(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[watcher.Sighting, int]] = []
    arrived = asyncio.Event()

    async def on_code(sighting: watcher.Sighting) -> None:
        seen.append((sighting, threading.get_ident()))
        arrived.set()

    async with watcher.Watcher(sources.FolderSource(tmp_path), on_code, poll_s=0.02):
        drop(tmp_path, "part.png", bench.qr_frame(PART, angle=90.0))
        await asyncio.wait_for(arrived.wait(), timeout=10)
    [(sighting, thread)] = seen
    assert sighting.code == codes.Part("PO-4411", "1", "BRK-220", "SN-002")
    assert thread == loop_thread


class Camera(sources.FrameSource):
    """A live camera filming one card over and over, slowly (as a real one does)."""

    def __init__(self, text: str) -> None:
        self.image = bench.qr_frame(text)
        self.closed = False
        self.reads = 0

    def read(self) -> sources.Frame | None:
        self.reads += 1
        time.sleep(0.005)
        return sources.Frame(self.image, datetime.now(UTC), "camera 0")

    def close(self) -> None:
        self.closed = True


async def test_a_code_a_live_camera_keeps_seeing_is_delivered_once() -> None:
    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    camera = Camera(BADGE)
    async with watcher.Watcher(camera, queue, repeat_after_s=60.0) as watching:
        await asyncio.wait_for(queue.get(), timeout=10)
        while watching.frames < 5:
            await asyncio.sleep(0.01)
    assert queue.empty()
    assert camera.closed


async def test_stopping_the_watcher_stops_its_thread_and_releases_the_camera() -> None:
    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    camera = Camera(PART)
    watching = watcher.Watcher(camera, queue)
    watching.start()
    await asyncio.wait_for(queue.get(), timeout=10)
    await asyncio.to_thread(watching.stop)
    assert not watching.running
    assert camera.closed
    reads = camera.reads
    await asyncio.sleep(0.05)
    assert camera.reads == reads
    watching.stop()  # stopping twice is harmless


async def test_the_event_loop_keeps_turning_while_frames_are_decoded() -> None:
    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    async with watcher.Watcher(Camera(BADGE), queue, repeat_after_s=0.0) as watching:
        longest = 0.0
        while watching.frames < 20:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            longest = max(longest, time.perf_counter() - before)
    assert queue.qsize() >= 19
    assert longest < 0.1  # a decision waiting on the loop waits for no frame
