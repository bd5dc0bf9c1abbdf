"""The hub page's embedded approver says at once when no floor takes the approval.

A hub run beside no embedded floor (or whose NATS refuses it) used to keep the person on the
approval page for about two minutes, nats-py retrying the connection 60 times, before saying
anything. The approver tries once and refuses with what was tried (host and port, never the URL's
password) and what to do; nothing is approved.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smart.contracts import approval
from smart.embedded import approver
from smart.runtime import ports
from smart.testing.plugin import make_settings

#: Half of nats-py's default retrying (60 tries, 2 s apart): a refusal later than this was not "at once".
BEFORE_RETRIES_END_S = 60.0


async def test_no_floor_listening_is_refused_at_once_naming_where_and_never_the_password(
    tmp_path: Path,
) -> None:
    port = ports.free_port()  # nothing listens here
    settings = make_settings(tmp_path / "state", stations=1).model_copy(
        update={"nats_url": f"nats://driver:s3cret-pass@127.0.0.1:{port}"}
    )
    with pytest.raises(approval.ApprovalRefused) as refused:
        await asyncio.wait_for(
            approver.on_embedded_floor("floor-basics", "a" * 64, "token", settings=settings),
            BEFORE_RETRIES_END_S,
        )
    said = str(refused.value)
    assert f"127.0.0.1:{port}" in said and "nothing was approved" in said
    assert "SMART_CONTRACT_APPROVAL_NAMESPACE" in said
    assert "s3cret-pass" not in said
