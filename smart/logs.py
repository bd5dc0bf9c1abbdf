"""Structured logs: one line per event with key=value pairs (or JSON), on stderr.

Every log line names what it is about (station, contract revision, ledger
entry) as fields, never inside prose, so they can be filtered and shipped.
Secrets never go in a field.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(level: str = "INFO") -> None:
    renderer: structlog.typing.Processor
    if os.environ.get("SMART_LOG_FORMAT", "").lower() == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
    # Health probes poll every second; one line per probe would drown the floor's events.
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
