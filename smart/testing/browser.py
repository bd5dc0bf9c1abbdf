"""A real headless Chromium (Debian's ``chromium`` package) driven by Playwright, for page tests.

Playwright's own browser download cannot run here, so we launch the system
browser with the flags a closed network needs. Screenshots go to
``test-artifacts/`` so a person can look at what the test saw.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from smart.testing.patience import STATE_DEADLINE_S

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
            context.set_default_timeout(STATE_DEADLINE_S * 1000)  # a busy machine is slow, not wrong
            yield context.new_page()
        finally:
            browser.close()


if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

#: A 7" Raspberry Pi touch screen, the station kiosk's smallest screen.
TOUCH_7_INCH: ViewportSize = {"width": 800, "height": 480}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@asynccontextmanager
async def async_page(viewport: ViewportSize | None = None) -> AsyncIterator[Any]:
    """A Playwright page for tests that run on an event loop (a station serving its own kiosk)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            context = await browser.new_context(viewport=viewport or DESKTOP, has_touch=True)
            context.set_default_timeout(STATE_DEADLINE_S * 1000)  # a busy machine is slow, not wrong
            yield await context.new_page()
        finally:
            await browser.close()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
