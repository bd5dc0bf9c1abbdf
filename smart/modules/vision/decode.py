"""Finding the codes in a camera frame: pyzbar first, OpenCV's QR detector when pyzbar finds nothing.

A frame is a BGR image (numpy, as OpenCV and picamera2 give it). Both
decoders work on its grayscale. pyzbar (ZBar) reads QR codes and 1-D
barcodes; camera noise slows it down and defeats it, so it first reads a
denoised, Otsu-binarised copy and only then the plain grayscale. OpenCV's
``QRCodeDetector.detectAndDecodeMulti`` reads QR codes only, and does best
on the plain grayscale (binarising hurts it); when it reads nothing, the
ArUco-based QR detector and then a smoothed copy are tried. :func:`decode`
is what a station uses: every text pyzbar found, or, when it found none,
OpenCV's; each :class:`Decoded` says which decoder read it. Both release
the GIL while they work, so a thread decodes without holding up the
station's event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from pyzbar import pyzbar

#: An image as OpenCV holds it: BGR (or already grayscale), 8 bits a channel.
Frame = np.ndarray[Any, np.dtype[Any]]
DecoderName = Literal["pyzbar", "opencv"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """One code read from a frame, and which decoder read it."""

    text: str
    decoder: DecoderName


def grayscale(frame: Frame) -> Frame:
    """The frame in grayscale (a frame already gray is returned as it is)."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def denoised(gray: Frame) -> Frame:
    """Sensor noise smoothed away (5×5 Gaussian), edges kept well enough for a decoder."""
    return cv2.GaussianBlur(gray, (5, 5), 0)


def binarised(gray: Frame) -> Frame:
    """Black and white at Otsu's threshold after smoothing: what ZBar reads best from a noisy camera."""
    _, bw = cv2.threshold(denoised(gray), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return bw


def _texts(raw: Iterable[bytes | str]) -> list[str]:
    found: list[str] = []
    for item in raw:
        text = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else item
        if text and text not in found:
            found.append(text)
    return found


def _first(
    gray: Frame, variants: tuple[Callable[[Frame], Frame], ...], read: Callable[[Frame], list[str]]
) -> list[str]:
    for variant in variants:
        texts = read(variant(gray))
        if texts:
            return texts
    return []


def _zbar(image: Frame) -> list[str]:
    return _texts(symbol.data for symbol in pyzbar.decode(image))


def _identity(gray: Frame) -> Frame:
    return gray


_ZBAR_VARIANTS = (binarised, _identity)


def decode_pyzbar(frame: Frame) -> tuple[Decoded, ...]:
    """What ZBar reads (QR and 1-D barcodes), from the binarised frame and then the plain grayscale."""
    return tuple(Decoded(text, "pyzbar") for text in _first(grayscale(frame), _ZBAR_VARIANTS, _zbar))


class OpenCvDecoder:
    """OpenCV's QR detectors; one instance per thread (a detector keeps state between calls).

    ``QRCodeDetector.detectAndDecodeMulti`` on the plain grayscale first; if it
    reads nothing, the ArUco-based ``QRCodeDetectorAruco`` (it finds the
    finder patterns another way, and reads some clean, upright codes the
    first one misses), then the first one again on a smoothed copy.
    """

    def __init__(self) -> None:
        classic, aruco = cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()
        self._attempts: tuple[tuple[Any, Callable[[Frame], Frame]], ...] = (
            (classic, _identity),
            (aruco, _identity),
            (classic, denoised),
        )

    def __call__(self, frame: Frame) -> tuple[Decoded, ...]:
        gray = grayscale(frame)
        for detector, variant in self._attempts:
            ok, texts, _points, _straight = detector.detectAndDecodeMulti(variant(gray))
            found = _texts(texts) if ok else []
            if found:
                return tuple(Decoded(text, "opencv") for text in found)
        return ()


def decode_opencv(frame: Frame) -> tuple[Decoded, ...]:
    """What OpenCV's QR detector reads (QR codes only), from the plain and then the smoothed grayscale."""
    return OpenCvDecoder()(frame)


class Decoder:
    """pyzbar first, OpenCV's QR detector when pyzbar reads nothing; one instance per decoding thread."""

    def __init__(self) -> None:
        self._opencv = OpenCvDecoder()

    def __call__(self, frame: Frame) -> tuple[Decoded, ...]:
        return decode_pyzbar(frame) or self._opencv(frame)


def decode(frame: Frame) -> tuple[Decoded, ...]:
    """Every code in ``frame``: pyzbar's, or OpenCV's when pyzbar read none."""
    return Decoder()(frame)
