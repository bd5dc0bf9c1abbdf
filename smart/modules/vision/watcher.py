"""Watching a frame source in a thread of its own and handing what it reads to the station's event loop.

Capture and decoding never hold up a decision: the :class:`Watcher`'s
thread reads a frame, decodes it (pyzbar and OpenCV release the GIL while
they work) and parses each text as one of the shop's codes; each result, a
:class:`Sighting`, is handed to the asyncio loop with
``loop.call_soon_threadsafe`` — put on an :class:`asyncio.Queue` or passed to
a callback that runs on the loop. A live camera sees the same code on
frame after frame: it is delivered once, then again only after
``repeat_after_s`` without it. Every image from a folder is a scan of its
own, so a folder's images are all delivered, and one with no readable code
too (with the error saying so), for the operator to see.

Usage from the station (the module's start and stop)::

    queue: asyncio.Queue[watcher.Sighting] = asyncio.Queue()
    async with watcher.Watcher(sources.FolderSource(folder, skip_existing=True), queue):
        sighting = await queue.get()   # sighting.code: codes.Badge | Traveler | Part | PpeTag
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from smart.modules.vision import codes, decode, sources

log = logging.getLogger(__name__)

Sink = asyncio.Queue["Sighting"] | Callable[["Sighting"], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one frame showed: a code (parsed, or the error why not), when and where it was seen."""

    at: datetime
    origin: str
    text: str | None
    decoder: decode.DecoderName | None
    code: codes.Code | None
    error: str | None = None


def sightings(frame: sources.Frame, decoded: tuple[decode.Decoded, ...]) -> list[Sighting]:
    """Each decoded text of ``frame`` as a sighting; a frame with none gives one sighting saying so."""
    if not decoded:
        nothing = f"no code could be read in {frame.origin}"
        return [Sighting(frame.at, frame.origin, None, None, None, nothing)]
    found = []
    for item in decoded:
        try:
            found.append(Sighting(frame.at, frame.origin, item.text, item.decoder, codes.parse(item.text)))
        except codes.CodeError as err:
            found.append(Sighting(frame.at, frame.origin, item.text, item.decoder, None, str(err)))
    return found


class Watcher:
    """A frame source read and decoded in a thread; what it reads goes to ``sink`` on the event loop."""

    def __init__(
        self,
        source: sources.FrameSource,
        sink: Sink,
        *,
        poll_s: float = 0.1,
        repeat_after_s: float = 2.0,
        decoder: Callable[[decode.Frame], tuple[decode.Decoded, ...]] | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.poll_s = poll_s
        self.repeat_after_s = repeat_after_s
        self._decoder = decoder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_seen: dict[str, float] = {}
        self._closed = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._close_lock = threading.Lock()
        #: Frames read and decoded so far (for status pages and tests).
        self.frames = 0

    # -- on the event loop ----------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the thread; sightings go to ``loop`` (by default the running one)."""
        if self._thread is not None:
            raise RuntimeError("this watcher has already been started")
        self._loop = loop or asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"vision-{self.source.__class__.__name__}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop reading, wait for the thread (at most ``timeout_s``), release the source. Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("vision thread of %s did not stop within %.1f s", self.source, timeout_s)
                return  # the thread closes the source itself when its read returns
        self._close_source()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def __aenter__(self) -> Watcher:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _deliver(self, sighting: Sighting) -> None:
        """On the loop: put the sighting on the queue, or call the callback (awaiting it if it is async)."""
        sink = self.sink
        if isinstance(sink, asyncio.Queue):
            try:
                sink.put_nowait(sighting)
            except asyncio.QueueFull:
                log.warning("vision queue full; dropped %s from %s", sighting.text, sighting.origin)
            return
        result = sink(sighting)
        if result is not None:
            task = asyncio.ensure_future(result)
            self._tasks.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(_report_failure)

    # -- in the thread ------------------------------------------------------------------------

    def _close_source(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.source.close()
        except Exception:
            log.exception("closing %s failed", self.source)

    def _fresh(self, sighting: Sighting) -> bool:
        """Whether to deliver: always from a folder; from a live camera once per code per quiet spell."""
        if not self.source.live:
            return True
        if sighting.text is None:
            return False  # a camera frame with nothing in it is not news
        now = time.monotonic()
        last = self._last_seen.get(sighting.text)
        self._last_seen[sighting.text] = now
        return last is None or now - last >= self.repeat_after_s

    def _run(self) -> None:
        decoder = self._decoder or decode.Decoder()
        loop = self._loop
        assert loop is not None
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read()
                except Exception:
                    log.exception("reading a frame from %s failed", self.source)
                    frame = None
                if frame is None:
                    self._stop.wait(self.poll_s)
                    continue
                self.frames += 1
                try:
                    found = sightings(frame, decoder(frame.image))
                except Exception:
                    log.exception("decoding a frame from %s failed", frame.origin)
                    continue
                for sighting in found:
                    if self._fresh(sighting):
                        try:
                            loop.call_soon_threadsafe(self._deliver, sighting)
                        except RuntimeError:  # the loop is closed: nobody is listening any more
                            self._stop.set()
                            break
        finally:
            self._close_source()


def _report_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("vision callback failed", exc_info=task.exception())
