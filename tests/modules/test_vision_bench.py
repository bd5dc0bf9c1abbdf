"""``smart bench vision``: both decoders timed on the same generated 640×480 frames."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from smart.cli import app as smart
from smart.modules.vision import bench


def test_the_bench_frames_are_640_by_480_and_show_every_code_every_way() -> None:
    made = bench.frames(len(bench.SAMPLES) * len(bench.CONDITIONS))
    assert all(image.shape == (480, 640, 3) for _text, image in made)
    assert {text for text, _image in made} == set(bench.SAMPLES)


def test_both_decoders_are_timed_and_read_the_frames() -> None:
    figures = bench.run(12, warmup=2)
    assert figures.pyzbar_ms > 0 and figures.opencv_ms > 0
    assert figures.pyzbar_read == 12
    assert figures.opencv_read >= 10
    assert figures.ratio == figures.opencv_ms / figures.pyzbar_ms


def test_bench_vision_prints_one_json_object_with_both_figures() -> None:
    result = CliRunner().invoke(smart, ["bench", "vision", "--json", "--frames", "6", "--warmup", "1"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert {"pyzbar_ms", "opencv_ms"} <= set(figures)
    assert figures["pyzbar_ms"] > 0 and figures["opencv_ms"] > 0


def test_bench_vision_prints_both_figures_and_the_ratio() -> None:
    result = CliRunner().invoke(smart, ["bench", "vision", "--frames", "6", "--warmup", "1"])
    assert result.exit_code == 0, result.output
    assert "pyzbar:" in result.output and "OpenCV:" in result.output and "OpenCV / pyzbar" in result.output
