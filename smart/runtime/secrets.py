"""The embedded floor's generated secrets: see :mod:`smart.secret_files` (shared with the hub services)."""

from __future__ import annotations

from smart.secret_files import secret

__all__ = ["secret"]
