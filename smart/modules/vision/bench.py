"""``smart bench vision``: decode time per 640×480 frame for pyzbar and for OpenCV, on the same frames.

The frames are generated: the shop's codes (badge, traveler, part) as QR
codes drawn with segno, placed on a 640×480 page, turned, blurred and
given sensor noise, the way a bench camera sees a card held up to it.
Each decoder is timed as the station runs it (grayscale, its
preprocessing, its second try when the first finds nothing) over every
frame, after a warm-up that is not counted; how many frames each read
correctly is reported beside its time, since a fast decoder that reads
nothing is no bargain. :func:`qr_frame` is also what the tests draw with.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import segno

from smart.modules.vision import decode

SIZE = (640, 480)

#: The shop's codes the bench and the tests draw.
SAMPLES = (
    "SMART:BADGE:B-1042",
    "SMART:TRAVELER:J-2026-0117:penetrant",
    "SMART:PART:PO-4411:1:BRK-220:SN-002",
)
#: (rotation in degrees, noise standard deviation in grey levels, Gaussian blur kernel) of the frames.
CONDITIONS = (
    (0.0, 0.0, 0),
    (15.0, 8.0, 3),
    (90.0, 12.0, 5),
    (37.0, 8.0, 3),
    (180.0, 4.0, 0),
    (-20.0, 12.0, 5),
)


def qr_frame(
    text: str,
    *,
    size: tuple[int, int] = SIZE,
    angle: float = 0.0,
    noise: float = 0.0,
    blur: int = 0,
    scale: int = 6,
    seed: int = 0,
) -> decode.Frame:
    """A BGR frame of ``size`` showing ``text`` as a QR code, turned by ``angle``°, blurred and noisy.

    ``blur`` is an odd Gaussian kernel size (0: none); ``noise`` the
    standard deviation of the Gaussian noise added, in grey levels.
    """
    png = io.BytesIO()
    segno.make_qr(text, error="m").save(png, kind="png", scale=scale, border=4)
    code: decode.Frame | None = cv2.imdecode(np.frombuffer(png.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert code is not None, "segno's PNG did not decode"
    width, height = size
    page: decode.Frame = np.full((height, width), 255, np.uint8)
    top, left = (height - code.shape[0]) // 2, (width - code.shape[1]) // 2
    if top < 0 or left < 0:
        raise ValueError(f"a QR code of {code.shape[1]}px does not fit a {width}×{height} frame; lower scale")
    page[top : top + code.shape[0], left : left + code.shape[1]] = code
    if angle:
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        page = cv2.warpAffine(page, turn, (width, height), borderValue=255)
    if blur:
        page = cv2.GaussianBlur(page, (blur, blur), 0)
    if noise:
        noisy = page.astype(np.float32) + np.random.default_rng(seed).normal(0.0, noise, page.shape)
        page = np.clip(noisy, 0, 255).astype(np.uint8)
    return cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)


def frames(count: int) -> list[tuple[str, decode.Frame]]:
    """``count`` frames cycling through the sample codes and the conditions, with the text each shows."""
    made = []
    for i in range(count):
        text = SAMPLES[i % len(SAMPLES)]
        angle, noise, blur = CONDITIONS[(i // len(SAMPLES)) % len(CONDITIONS)]  # every code, every way
        made.append((text, qr_frame(text, angle=angle, noise=noise, blur=blur, seed=i)))
    return made


@dataclass(frozen=True, slots=True)
class Figures:
    frames: int
    warmup: int
    pyzbar_ms: float
    opencv_ms: float
    #: Frames (of ``frames``) each decoder read the right text from.
    pyzbar_read: int
    opencv_read: int

    @property
    def ratio(self) -> float:
        """OpenCV's time per frame over pyzbar's (above 1: pyzbar is faster)."""
        return self.opencv_ms / self.pyzbar_ms if self.pyzbar_ms else float("inf")

    def as_json(self) -> dict[str, float | int]:
        return {
            "pyzbar_ms": round(self.pyzbar_ms, 3),
            "opencv_ms": round(self.opencv_ms, 3),
            "opencv_to_pyzbar": round(self.ratio, 3),
            "frames": self.frames,
            "pyzbar_read": self.pyzbar_read,
            "opencv_read": self.opencv_read,
        }


def _time(
    read: Callable[[decode.Frame], tuple[decode.Decoded, ...]],
    sample: list[tuple[str, decode.Frame]],
    warmup: int,
) -> tuple[float, int]:
    for _text, image in sample[:warmup]:
        read(image)
    right = 0
    started = time.perf_counter()
    for text, image in sample:
        if any(found.text == text for found in read(image)):
            right += 1
    return (time.perf_counter() - started) * 1000 / len(sample), right


def run(count: int = 300, *, warmup: int = 20) -> Figures:
    """Both decoders over the same ``count`` frames, each after ``warmup`` untimed ones."""
    sample = frames(count)
    pyzbar_ms, pyzbar_read = _time(decode.decode_pyzbar, sample, warmup)
    opencv_ms, opencv_read = _time(decode.OpenCvDecoder(), sample, warmup)
    return Figures(
        frames=count,
        warmup=warmup,
        pyzbar_ms=pyzbar_ms,
        opencv_ms=opencv_ms,
        pyzbar_read=pyzbar_read,
        opencv_read=opencv_read,
    )
