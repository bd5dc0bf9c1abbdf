"""A real headless Chromium (Debian's ``chromium`` package) driven by Playwright, for page tests.

Playwright's own browser download cannot run here, so we launch the system
browser with the flags a closed network needs. Screenshots go to
``test-artifacts/`` so a person can look at what the test saw.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ARTIFACTS = Path("test-artifacts")


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError(
            "Debian's chromium is not installed: `make test` installs it (system-packages.txt)"
        )
    return path


@pytest.fixture
def page() -> Iterator[object]:
    """A fresh Playwright page in headless Chromium (typed loosely: Playwright is a test extra)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            yield context.new_page()
        finally:
            browser.close()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
