"""The embedded floor's approvers say at once when no floor takes the approval: the hub page's and the CLI's.

A hub run beside no embedded floor (or whose NATS refuses it) used to keep the person on the
approval page for about two minutes, nats-py retrying the connection 60 times, before saying
anything; ``smart contract approve`` did the same in a terminal. Both go through the driver's one
try (``driver.connect_at_once``) and refuse with what was tried (host and port, never the URL's
password), that nothing was approved, and what to do; nothing is written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smart.contracts import approval
from smart.embedded import approver
from smart.runtime import ports
from smart.testing.cli import invoke
from smart.testing.plugin import make_settings

#: Half of nats-py's default retrying (60 tries, 2 s apart): a guard against hanging, not a measure.
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


def test_the_cli_refuses_at_once_naming_where_and_writes_nothing(tmp_path: Path) -> None:
    """``smart contract approve`` with no floor at its hub NATS: exit 1, one line, no ledger entry."""
    port = ports.free_port()  # nothing listens here
    token = tmp_path / "qm.token"
    token.write_text("a signature nobody reads: no floor answered")
    state = tmp_path / "state"
    result = invoke(
        *("contract", "approve", "floor-basics", "--revision", "a" * 12, "--credential", str(token)),
        env={
            "SMART_NATS_URL": f"nats://driver:s3cret-pass@127.0.0.1:{port}",
            "SMART_STATE_DIR": str(state),
            "SMART_KEYS_DIR": str(tmp_path / "keys"),
        },
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()  # the refusal alone: no traceback of nats-py's tries before it
    assert line.startswith("smart contract approve: no floor took the approval: ")
    assert f"the embedded floor's NATS at 127.0.0.1:{port}" in line and "nothing was approved" in line
    assert "smart up" in line and "-n NAMESPACE" in line  # what to do, on either driver
    assert "s3cret-pass" not in result.output
    assert not (state / "ledger").exists()  # no contract.approved entry, no ledger at all
