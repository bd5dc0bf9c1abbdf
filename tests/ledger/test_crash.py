"""A station killed mid-append (SIGKILL, as a power cut would) loses nothing that ``append`` returned."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from smart import ledger
from smart.keys import KeyStore

APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from smart import ledger, logs
    from smart.keys import KeyStore

    logs.configure("WARNING")  # stdout carries only the returned node_seqs
    keys = KeyStore(Path(sys.argv[1]))
    log = ledger.NodeLog(Path(sys.argv[2]), node="pt-1", key=keys.signing_key("pt-1"), head_interval=0.05)
    while True:
        entry = log.append(kind="gate.decision", subject="part:PN-1", data={"ok": 1}, actor="person:jane")
        print(entry.node_seq, flush=True)
    """
)


def test_a_killed_node_keeps_every_entry_whose_append_returned(tmp_path: Path) -> None:
    keys_dir, path = tmp_path / "keys", tmp_path / "pt-1.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(keys_dir), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    returned: list[int] = []
    for line in child.stdout:
        returned.append(int(line))
        if len(returned) >= 400:
            break
    child.send_signal(signal.SIGKILL)
    returned.extend(int(line) for line in child.stdout)  # appends that returned before the kill
    assert child.wait() == -signal.SIGKILL
    assert returned == list(range(len(returned)))

    with ledger.NodeLog(path, node="pt-1", key=KeyStore(keys_dir).signing_key("pt-1")) as log:
        assert log.verify() == []
        entries = log.entries(0)
        assert [e.node_seq for e in entries] == list(range(len(entries)))
        assert len(entries) >= len(returned)
        assert log.heads(), "the node signed heads while it appended"
        after = log.append(kind="gate.decision", subject="part:PN-2", data={}, actor="person:jane")
        assert (after.node_seq, after.prev) == (len(entries), entries[-1].hash)
        assert log.verify() == []


def test_the_chain_check_names_a_damaged_entry(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    path = tmp_path / "pt-1.sqlite3"
    with ledger.NodeLog(path, node="pt-1", key=keys.signing_key("pt-1")) as log:
        for n in range(5):
            log.append(kind="gate.decision", subject=f"part:PN-{n}", data={"n": n}, actor="person:jane")
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE ledger_entries SET entry = CAST(replace(entry, '\"n\":2', '\"n\":3') AS BLOB)"
            " WHERE node_seq = 2"
        )
    with ledger.NodeLog(path, node="pt-1", key=keys.signing_key("pt-1")) as log:
        assert log.verify()[0] == "pt-1#2: does not match its stored hash"
