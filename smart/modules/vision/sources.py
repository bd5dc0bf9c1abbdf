"""Where frames come from: a folder of images, an OpenCV capture (USB or RTSP), or a Pi camera.

Each source gives :class:`Frame` values (a BGR image and when it was taken)
through one small interface, :class:`FrameSource`: ``read()`` returns the
next frame, or ``None`` when there is none right now; ``close()`` lets go
of the device. A source is *live* when it films continuously (the same code
is then seen frame after frame and the watcher counts it once); a folder is
not: every image dropped in is one deliberate scan.

- :class:`FolderSource` reads each new image file once, oldest first (the
  embedded mode's station folder, where dropping a picture of a QR code
  acts as a scan; and the tests).
- :class:`OpenCvSource` wraps ``cv2.VideoCapture`` on a device index or a
  stream URL.
- :class:`PiCameraSource` drives a Raspberry Pi camera through picamera2,
  imported only when one is constructed (it exists only on a Pi).

:func:`open_source` makes one from a station's camera setting (a folder, a
device index, a stream URL or ``picamera``).
"""

from __future__ import annotations

import abc
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import cv2

from smart.modules.vision import decode

log = logging.getLogger(__name__)

#: Image files a folder source reads (by suffix, any case).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


class SourceError(RuntimeError):
    """A frame source cannot start: no such folder, camera or library; the message says which."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One image (BGR, as OpenCV uses), when it was taken, and where it came from (file or camera)."""

    image: decode.Frame
    at: datetime
    origin: str


def _now() -> datetime:
    return datetime.now(UTC)


class FrameSource(abc.ABC):
    """A camera or a folder of images, read one frame at a time."""

    #: A live source films continuously (one code is seen on many frames); a folder is not live.
    live: ClassVar[bool] = True

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` when none is ready now (the caller waits a little and asks again)."""

    def close(self) -> None:  # noqa: B027 - a source with nothing to release need not override it
        """Let go of the device; reading after this is an error."""

    def __iter__(self) -> Iterator[Frame]:
        """The frames ready now, up to the first moment none is."""
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FolderSource(FrameSource):
    """Image files in a folder, each read once, in the order they arrived (modification time, then name).

    A file dropped in again (a new modification time or size) is a new
    scan. A file that does not read as an image yet (still being written) is
    tried again until ``settle_s`` after it last changed, then skipped with
    a warning. ``skip_existing`` ignores the images already there when the
    source starts (a station restarting should not rescan yesterday's
    badge); by default they are read too.
    """

    live: ClassVar[bool] = False

    def __init__(self, folder: Path | str, *, skip_existing: bool = False, settle_s: float = 1.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder of images")
        self.settle_s = settle_s
        self._seen: set[tuple[str, int, int]] = set()
        self._pending: deque[tuple[str, int, int]] = deque()
        if skip_existing:
            self._seen.update(self._listing())

    def _listing(self) -> list[tuple[str, int, int]]:
        found: list[tuple[int, str, int]] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES or entry.name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                found.append((stat.st_mtime_ns, entry.name, stat.st_size))
        found.sort()
        return [(name, mtime, size) for mtime, name, size in found]

    def read(self) -> Frame | None:
        if not self._pending:
            self._pending.extend(key for key in self._listing() if key not in self._seen)
        while self._pending:
            key = self._pending.popleft()
            name, mtime_ns, _size = key
            path = self.folder / name
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                if time.time() - mtime_ns / 1e9 < self.settle_s and path.exists():
                    continue  # perhaps still being written: seen again on the next listing
                self._seen.add(key)
                log.warning("%s is not an image that can be read; skipped", path)
                continue
            self._seen.add(key)
            return Frame(image=image, at=datetime.fromtimestamp(mtime_ns / 1e9, UTC), origin=str(path))
        return None


class OpenCvSource(FrameSource):
    """``cv2.VideoCapture`` on a USB camera's index or a network stream's URL (``rtsp://…``)."""

    def __init__(self, device: int | str, *, width: int | None = None, height: int | None = None) -> None:
        self.device = device
        self._capture: Any = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"camera {device!r} cannot be opened by OpenCV")
        if width is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        return Frame(image=image, at=_now(), origin=f"camera {self.device}")

    def close(self) -> None:
        self._capture.release()


class PiCameraSource(FrameSource):
    """A Raspberry Pi camera through picamera2 (installed with Raspberry Pi OS; imported only here).

    picamera2's ``RGB888`` format is laid out B, G, R in memory: the
    array it captures is already the BGR image OpenCV expects.
    """

    def __init__(self, *, size: tuple[int, int] = (640, 480), camera: int = 0) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise SourceError(
                "picamera2 is not installed: it comes with Raspberry Pi OS (apt install python3-picamera2); "
                "on other machines use OpenCvSource for a USB or network camera, or FolderSource"
            ) from err
        self._camera: Any = Picamera2(camera)
        config = self._camera.create_video_configuration(main={"size": size, "format": "RGB888"})
        self._camera.configure(config)
        self._camera.start()

    def read(self) -> Frame | None:
        image = self._camera.capture_array("main")
        if image is None:
            return None
        return Frame(image=image, at=_now(), origin="picamera")

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()


def open_source(setting: str, *, skip_existing: bool = True) -> FrameSource:
    """The source a station's camera setting names.

    ``picamera`` or ``picamera:<n>``: the Pi camera; a number: that USB
    camera; ``rtsp://…``, ``http(s)://…``: a network stream; anything else:
    a folder of images (by default ignoring the ones already there, so a
    restarted station does not rescan old images).
    """
    value = setting.strip()
    if value == "picamera" or value.startswith("picamera:"):
        index = value.partition(":")[2]
        if index and not index.isdigit():
            raise SourceError(f"camera setting {setting!r}: expected picamera or picamera:<number>")
        return PiCameraSource(camera=int(index or 0))
    if value.isdigit():
        return OpenCvSource(int(value))
    if value.split("://", 1)[0].lower() in {"rtsp", "rtsps", "http", "https"} and "://" in value:
        return OpenCvSource(value)
    if not value:
        raise SourceError("camera setting is empty: expected a folder, a camera number, a URL or picamera")
    return FolderSource(Path(value).expanduser(), skip_existing=skip_existing)
