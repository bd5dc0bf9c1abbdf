"""Reading what the code logged, whatever logging an earlier test in the same worker left behind.

structlog's ``capture_logs`` swaps the processors only: a level filter that an earlier test's
CLI (or an in-process bench) configured still drops the info lines a test reads, and the
renderer's stream may be one a runner has since closed. :func:`captured` opens the level for
the test, captures every event as a dict, and puts the previous configuration back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog


@contextlib.contextmanager
def captured() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event logged inside the block, at any level, as the list ``capture_logs`` fills."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logged:
            yield logged
    finally:
        structlog.configure(**saved)
