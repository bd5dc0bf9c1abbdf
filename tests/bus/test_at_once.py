"""One try at the hub NATS: where it tried, by host and port only, and a refusal callers can tell apart."""

from __future__ import annotations

import pytest

from smart.bus import at_once
from smart.contracts import approval
from smart.runtime import ports


def test_address_names_host_and_port_never_the_user_or_password() -> None:
    assert at_once.address("nats://driver:pw@10.0.0.5:4333", default_port=4222) == "10.0.0.5:4333"
    assert at_once.address("nats://hub.shop", default_port=4222) == "hub.shop:4222"
    assert (
        at_once.address("nats://u:pw@[::1]:5000, tls://a:pw@b.shop", default_port=4222)
        == "[::1]:5000, b.shop:4222"
    )
    assert at_once.address("nats://u:pw@host:notaport", default_port=4222) == "host:(no port)"


async def test_a_closed_port_raises_hub_unreachable_naming_it_and_that_nothing_changed() -> None:
    port = ports.free_port()  # nothing listens here
    with pytest.raises(at_once.HubUnreachable) as refused:
        await at_once.connect(
            f"nats://driver:pw@127.0.0.1:{port}",
            name="test",
            signin={},
            what="the hub NATS",
            who="the test's",
            advice="Start it",
        )
    assert refused.value.where == f"127.0.0.1:{port}"
    assert str(refused.value) == (
        f"the hub NATS at 127.0.0.1:{port} did not answer or refused the test's sign-in "
        f"({type(refused.value.__cause__).__name__}); nothing changed. Start it"
    )
    assert "pw" not in str(refused.value)


def test_an_approval_no_floor_took_is_a_hub_unreachable_said_for_approvals() -> None:
    refused = approval.FloorUnreachable("no answer", where="h:1", advice="Go")
    assert isinstance(refused, at_once.HubUnreachable) and isinstance(refused, approval.ApprovalRefused)
    assert str(refused) == "no floor took the approval: no answer; nothing was approved. Go"
    assert str(refused.advising("more")).endswith("Go; more")
