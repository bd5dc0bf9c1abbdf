"""Decoding generated QR frames (segno, 640×480) through noise, blur and rotation: each decoder, and both."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pyzbar import pyzbar

from smart.modules.vision import bench, codes, decode

BADGE = "SMART:BADGE:B-1042"
TRAVELER = "SMART:TRAVELER:J-2026-0117:penetrant"
PART = "SMART:PART:PO-4411:1:BRK-220:SN-002"

#: (rotation °, noise σ in grey levels, blur kernel): a card held up to a bench camera.
CAMERA = [
    pytest.param(0.0, 0.0, 0, id="clean"),
    pytest.param(0.0, 12.0, 5, id="noisy-blurred"),
    pytest.param(15.0, 12.0, 5, id="turned-15"),
    pytest.param(90.0, 12.0, 5, id="turned-90"),
]


@pytest.mark.parametrize("text", [BADGE, TRAVELER, PART])
@pytest.mark.parametrize(("angle", "noise", "blur"), CAMERA)
def test_pyzbar_reads_the_shops_codes(text: str, angle: float, noise: float, blur: int) -> None:
    frame = bench.qr_frame(text, angle=angle, noise=noise, blur=blur, seed=7)
    assert frame.shape == (480, 640, 3)
    assert decode.decode_pyzbar(frame) == (decode.Decoded(text, "pyzbar"),)


@pytest.mark.parametrize("text", [BADGE, TRAVELER, PART])
@pytest.mark.parametrize(("angle", "noise", "blur"), CAMERA)
def test_opencv_reads_the_shops_codes(text: str, angle: float, noise: float, blur: int) -> None:
    frame = bench.qr_frame(text, angle=angle, noise=noise, blur=blur, seed=7)
    assert decode.decode_opencv(frame) == (decode.Decoded(text, "opencv"),)


@pytest.mark.parametrize("text", [BADGE, TRAVELER, PART])
@pytest.mark.parametrize(("angle", "noise", "blur"), [*CAMERA, pytest.param(37.0, 25.0, 5, id="hard")])
def test_the_station_decoder_reads_and_parses_each_code(
    text: str, angle: float, noise: float, blur: int
) -> None:
    found = decode.decode(bench.qr_frame(text, angle=angle, noise=noise, blur=blur, seed=3))
    assert [item.text for item in found] == [text]
    assert codes.parse(found[0].text).text() == text


def test_heavy_noise_is_read_through_the_binarised_copy() -> None:
    frame = bench.qr_frame(PART, angle=37.0, noise=40.0, blur=7, seed=1)
    assert [item.text for item in decode.decode(frame)] == [PART]


def test_opencv_takes_over_when_pyzbar_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyzbar, "decode", lambda image: [])
    frame = bench.qr_frame(BADGE, angle=15.0, noise=12.0, blur=5, seed=7)
    assert decode.decode(frame) == (decode.Decoded(BADGE, "opencv"),)


def test_pyzbar_is_asked_first_and_opencv_not_at_all_when_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(image: decode.Frame) -> list[str]:
        raise AssertionError("OpenCV was asked although pyzbar read the code")

    monkeypatch.setattr(decode.OpenCvDecoder, "__call__", lambda self, image: never(image))
    assert decode.decode(bench.qr_frame(TRAVELER)) == (decode.Decoded(TRAVELER, "pyzbar"),)


def test_two_codes_in_one_frame_are_both_read() -> None:
    left = bench.qr_frame(BADGE, size=(320, 480), scale=5)
    right = bench.qr_frame(PART, size=(320, 480), scale=5)
    frame = np.hstack([left, right])
    assert {item.text for item in decode.decode_pyzbar(frame)} == {BADGE, PART}
    assert {item.text for item in decode.decode_opencv(frame)} == {BADGE, PART}


def test_a_frame_without_a_code_decodes_to_nothing() -> None:
    rng = np.random.default_rng(0)
    blank = rng.integers(90, 160, size=(480, 640, 3), dtype=np.uint8)
    assert decode.decode(blank) == ()


def test_a_grayscale_frame_is_read_as_it_is() -> None:
    gray = cv2.cvtColor(bench.qr_frame(BADGE), cv2.COLOR_BGR2GRAY)
    assert decode.decode(gray) == (decode.Decoded(BADGE, "pyzbar"),)
