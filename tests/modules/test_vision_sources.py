"""Frame sources: a station folder where a dropped image is a scan, an OpenCV capture, a Pi camera."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from smart.modules.vision import bench, decode, sources

BADGE = "SMART:BADGE:B-1042"
PART = "SMART:PART:PO-4411:1:BRK-220:SN-002"


def drop(folder: Path, name: str, text: str, *, mtime: float | None = None) -> Path:
    """Write an image of ``text``'s QR code the way a station folder receives one: whole, by rename."""
    path = folder / name
    partial = folder / f".{name}.part{path.suffix}"
    assert cv2.imwrite(str(partial), bench.qr_frame(text))
    os.replace(partial, path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def texts(frame: sources.Frame | None) -> list[str]:
    assert frame is not None
    return [item.text for item in decode.decode(frame.image)]


def test_a_folder_source_picks_up_an_image_dropped_into_it(tmp_path: Path) -> None:
    source = sources.FolderSource(tmp_path)
    assert source.read() is None
    path = drop(tmp_path, "badge.png", BADGE)
    frame = source.read()
    assert frame is not None
    assert frame.origin == str(path)
    assert frame.image.shape == (480, 640, 3)
    assert texts(frame) == [BADGE]
    assert source.read() is None  # each file is read once


def test_a_folder_is_read_in_the_order_files_arrived_not_by_name(tmp_path: Path) -> None:
    drop(tmp_path, "a-second.png", PART, mtime=2_000_000_000)
    drop(tmp_path, "z-first.png", BADGE, mtime=1_900_000_000)
    with sources.FolderSource(tmp_path) as source:
        assert [Path(frame.origin).name for frame in source] == ["z-first.png", "a-second.png"]


def test_the_same_image_dropped_again_is_a_new_scan(tmp_path: Path) -> None:
    source = sources.FolderSource(tmp_path)
    drop(tmp_path, "badge.png", BADGE, mtime=1_900_000_000)
    assert texts(source.read()) == [BADGE]
    drop(tmp_path, "badge.png", BADGE, mtime=1_900_000_100)
    assert texts(source.read()) == [BADGE]


def test_a_station_folder_can_ignore_the_images_already_there(tmp_path: Path) -> None:
    drop(tmp_path, "yesterday.png", BADGE)
    source = sources.FolderSource(tmp_path, skip_existing=True)
    assert source.read() is None
    drop(tmp_path, "today.png", PART)
    frame = source.read()
    assert frame is not None and Path(frame.origin).name == "today.png"


def test_files_that_are_not_images_are_passed_over(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a scan")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    os.utime(tmp_path / "broken.png", (1_000_000_000, 1_000_000_000))  # long settled: skipped, not retried
    source = sources.FolderSource(tmp_path)
    assert source.read() is None
    assert source.read() is None


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(sources.SourceError, match="no such folder"):
        sources.FolderSource(tmp_path / "nowhere")


def test_an_opencv_source_reads_a_capture_frame_by_frame(tmp_path: Path) -> None:
    video = tmp_path / "bench-camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 480))
    assert writer.isOpened()
    for _ in range(3):
        writer.write(bench.qr_frame(BADGE))
    writer.release()
    with sources.OpenCvSource(str(video)) as source:
        frames = list(source)
    assert len(frames) == 3
    assert all(texts(frame) == [BADGE] for frame in frames)
    assert frames[0].at.tzinfo is not None


def test_a_camera_opencv_cannot_open_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(sources.SourceError, match="cannot be opened"):
        sources.OpenCvSource(str(tmp_path / "no-camera.avi"))


def test_without_picamera2_a_pi_camera_source_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a machine without it
    with pytest.raises(sources.SourceError, match="picamera2 is not installed"):
        sources.PiCameraSource()


class FakePicamera2:
    """What picamera2's Picamera2 does for the source: configure, start, capture arrays, stop."""

    instances: list[FakePicamera2] = []  # noqa: RUF012 - a test double's registry

    def __init__(self, camera: int = 0) -> None:
        self.config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict[str, Any]) -> dict[str, Any]:
        return {"main": main}

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, stream: str) -> np.ndarray[Any, Any]:
        return bench.qr_frame(PART)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def test_a_pi_camera_source_asks_picamera2_for_bgr_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    with sources.PiCameraSource(size=(640, 480)) as source:
        frame = source.read()
        camera = FakePicamera2.instances[-1]
        assert camera.started
        assert camera.config == {"main": {"size": (640, 480), "format": "RGB888"}}
    assert texts(frame) == [PART]
    assert camera.closed and not camera.started


def test_a_station_camera_setting_names_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop(tmp_path, "old.png", BADGE)
    folder = sources.open_source(str(tmp_path))
    assert isinstance(folder, sources.FolderSource)
    assert folder.read() is None  # a station's folder ignores what was there before it started
    with pytest.raises(sources.SourceError, match="cannot be opened"):
        sources.open_source("rtsp://127.0.0.1:1/none")
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(sources.SourceError, match="picamera2 is not installed"):
        sources.open_source("picamera")
    with pytest.raises(sources.SourceError, match="no such folder"):
        sources.open_source(str(tmp_path / "nowhere"))
