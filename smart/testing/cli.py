"""Running the ``smart`` command inside a test, as a person would type it.

A command sets up logging for itself (to the runner's stderr, which the
runner closes afterwards), so the test's own structlog configuration is put
back whatever the command did.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from typer.testing import CliRunner, Result


def invoke(*args: str, env: Mapping[str, str] | None = None) -> Result:
    """``smart <args>`` in-process; exceptions are not caught, so a crash fails the test as it is."""
    from smart import cli

    saved = structlog.get_config()
    try:
        return CliRunner().invoke(cli.app, list(args), env=dict(env) if env else None, catch_exceptions=False)
    finally:
        structlog.configure(**saved)
