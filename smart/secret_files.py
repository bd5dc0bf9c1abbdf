"""Generated secrets (database passwords), kept 0600 in the secrets directory (`<state>/secrets`).

They are generated on first use and never printed or logged; ``smart config
show`` masks them and the README says where they live.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def secret(path: Path) -> str:
    """The secret in ``path``, generated (URL-safe, 192 bits) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    return path.read_text().strip()
