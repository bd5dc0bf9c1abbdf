"""``smart hub run --role vault`` on its own serves PolicyCentral and approves end to end; the Floor does not.

Two hub processes from settings alone, each signed in as its own NATS user (the floor's hub
nats-server with per-role users and a pt-1 leaf, a fresh PostgreSQL database): the Vault and
the Floor, as their Deployments run them, with no ``smart up`` in between. The contracts are
seeded by the embedded driver (the floor's bootstrap) and pt-1's node agent enforces them. A
change signed by its author (the quality manager) is held; on the Vault's page the author's own
approval is refused, saying why and changing nothing at pt-1; a Level 3 in PT approves with a
signature SMART-ID makes from its records, the Vault hands it to the floor's approver (the
embedded driver, the settings' default) and pt-1 then enforces the new revision. PolicyCentral's
pages (``/policy``, the history, the approval page, linked to one another) are the Vault's and
answer 404 on the Floor, whose ComplianceCentral search stays there.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from smart.embedded import driver
from smart.ledger import hub_store
from smart.node.agent import NodeAgent
from smart.runtime import ports
from smart.secret_files import secret
from smart.testing.plugin import FreshDatabase
from tests.hub.compliance.conftest import QM, DemoPeople, Seeded, hold_change, signed_in
from tests.hub.hub_processes import answering, start_hub, tail
from tests.node.conftest import eventually


async def test_the_vault_hub_run_serves_policy_and_approves_a_held_revision_that_pt1_then_enforces(
    seeded: Seeded, demo_people: DemoPeople, pt1: NodeAgent, database: FreshDatabase, tmp_path: Path
) -> None:
    nats_floor, settings, keys_dir, agent = seeded.floor, seeded.settings, seeded.keys_dir, pt1
    smartid = demo_people.smartid
    secrets = nats_floor.settings.secrets_directory  # the per-role NATS passwords the floor made
    # The ledger's app role, as the Floor made it; the Vault holds the people and their logins.
    hub_store.migrate(database.url, app_password=secret(secrets / "ledger-app.password"))

    hubs = nats_floor.floor.hub
    assert hubs is not None
    ports_of = {"vault": ports.free_port(), "floor": ports.free_port()}
    env = {
        **os.environ,
        "SMART_KEYS_DIR": str(keys_dir),
        "SMART_SECRETS_DIR": str(secrets),
        "SMART_DATABASE_URL": database.url,
        "SMART_NATS_URL": hubs.url,  # the bare address: each role signs in as its own user
        "SMART_STATIONS": "3",
    }
    processes = {
        role: start_hub(
            role,
            {**env, "SMART_STATE_DIR": str(tmp_path / role), "SMART_WEB_PORT": str(port)},
            tmp_path / f"{role}.log",
        )
        for role, port in ports_of.items()
    }
    vault_url, floor_url = (f"http://127.0.0.1:{ports_of[r]}" for r in ("vault", "floor"))
    try:
        first = agent.enforcer.revisions["penetrant"]
        revision = await hold_change(seeded, smartid, author=QM, actor="qm")
        await asyncio.gather(
            *(
                answering(f"http://127.0.0.1:{p}", "/login", processes[r], tmp_path / f"{r}.log")
                for r, p in ports_of.items()
            )
        )

        # Each page on its role: PolicyCentral and its approval page on the Vault, not on the Floor.
        floor_client = await signed_in(floor_url, "qm")
        qm = await signed_in(vault_url, "qm")
        try:
            for path in ("/policy", "/policy/contracts/penetrant", "/policy/contracts/penetrant/approve"):
                assert (await floor_client.get(path)).status_code == 404, path
            assert (await floor_client.get("/compliance")).status_code == 200
            assert (await qm.get("/compliance")).status_code == 404
            policy = await qm.get("/policy")
            assert policy.status_code == 200
            assert 'href="/policy/contracts/penetrant/approve"' in policy.text  # links to the approval
            page = await qm.get("/policy/contracts/penetrant/approve")
            assert page.status_code == 200 and f'data-revision="{revision}"' in page.text
            assert 'href="/policy"' in page.text and 'href="/policy/contracts/penetrant"' in page.text
            assert 'id="approve"' in page.text  # an approver is wired: the button, not the CLI line
            assert (await qm.get("/policy/contracts/penetrant")).status_code == 200

            # The author's own approval: refused, saying why; nothing changes at pt-1.
            refused = await qm.post("/policy/contracts/penetrant/approve", data={"revision": revision})
            assert refused.status_code == 409
            assert f"badge qm-1 wrote revision {revision[:12]}" in refused.text
            assert "a second person must approve it" in refused.text
        finally:
            await floor_client.aclose()
            await qm.aclose()
        assert agent.enforcer.revisions["penetrant"] == first

        lee = await signed_in(vault_url, "lee")  # a Level 3 in PT, who did not write it
        try:
            done = await lee.post("/policy/contracts/penetrant/approve", data={"revision": revision})
            assert done.status_code == 200, done.text
            assert f"approved revision {revision[:12]}" in done.text
        finally:
            await lee.aclose()
        await eventually(
            lambda: agent.enforcer.revisions.get("penetrant") not in (None, first),
            what="pt-1 enforcing the approved revision",
        )
        (record,) = [r for r in await driver.approval_records(settings) if r.contract == "penetrant"]
        entry = record.find(revision)
        assert record.distributed == revision and entry is not None
        assert [a.badge for a in entry.approvals] == ["l3-1"] and entry.author is not None
        assert entry.author.badge == "qm-1"
    finally:
        for role, process in processes.items():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            assert process.returncode in (0, -9), tail(tmp_path / f"{role}.log")
