"""``smart contract approve -n NS`` with no Kubernetes API server answering: refused at once, nothing made.

The ContractApproval is created through the API server the kubeconfig (here ``SMART_KUBE_SERVER``)
names; when nothing listens there the CLI exits non-zero naming that host and port and saying that
nothing was approved, whether it had to look the pending revision up first (a short revision) or
create the ContractApproval straight away (a full one, as the hub's approval page names it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smart.contracts import approval, kube_approval
from smart.runtime import ports
from smart.testing.cli import invoke


@pytest.mark.parametrize("revision", ["a" * 12, "a" * 64], ids=["looked-up", "named-in-full"])
def test_no_api_server_is_refused_naming_where_and_nothing_was_approved(
    revision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = ports.free_port()  # nothing listens here
    server = f"http://127.0.0.1:{port}"
    token = tmp_path / "qm.token"
    token.write_text("a signature nobody reads: no API server answered")
    command = ("contract", "approve", "floor-basics", "--revision", revision, "--credential", str(token))
    result = invoke(*command, "-n", "shop-floor", env={"SMART_KUBE_SERVER": server})
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("smart contract approve: no floor took the approval: ")
    assert f"the Kubernetes API server at 127.0.0.1:{port} did not answer" in line
    assert "nothing was approved" in line and "SMART_KUBE_SERVER" in line

    # The page's call (on_kubernetes) is the same request: the same refusal, for the page to show.
    monkeypatch.setenv("SMART_KUBE_SERVER", server)
    with pytest.raises(approval.FloorUnreachable) as refused:
        kube_approval.request("floor-basics", revision, "token", "shop-floor", patience_s=1)
    assert refused.value.where == f"127.0.0.1:{port}"
