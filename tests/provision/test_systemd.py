"""`smart station provision`: the Pi's units pass systemd-analyze, and the station enforces with the hub down.

The test provisions pt-2 (no station of the simulated floor: its identity is its provisioning)
into a temporary root, stores a signed penetrant revision in the
station's store, then starts the leaf and the agent exactly as the units' ExecStart lines say,
with the EnvironmentFile's variables, while no hub listens anywhere: the station answers
decisions from the stored revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from smart.bus import subjects
from smart.cli import app
from smart.contracts import bundle as contract_bundle
from smart.contracts.models import SmartContract, Station
from smart.keys import KeyStore
from smart.node.store import StationStore
from smart.provision import systemd
from smart.runtime.ports import free_port
from smart.settings import Settings
from tests.charts.conftest import find, render, station_value
from tests.node.conftest import reference

STATION = "pt-2"


def unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


@pytest.fixture
def provisioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, KeyStore]]:
    hub_keys = KeyStore(tmp_path / "hub-keys")
    hub_keys.signing_key("hub")
    seed_file = tmp_path / f"{STATION}.nk"
    runner = CliRunner()
    monkeypatch.setenv("SMART_KEYS_DIR", str(hub_keys.directory))
    monkeypatch.setenv("SMART_SETTINGS_FILE", "/nonexistent/smart.toml")
    made = runner.invoke(app, ["station", "credentials", STATION, "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert seed_file.exists()
    state = tmp_path / "var-lib-smart"
    for name, value in {
        "SMART_STATE_DIR": str(state),
        "SMART_KEYS_DIR": str(state / "keys"),
        "SMART_STATIONS": "6",
        "SMART_STATION_NATS_PORT_BASE": str(free_port() - 1),
        "SMART_STATION_MONITOR_PORT_BASE": str(free_port() - 1),
        "SMART_STATION_WEB_PORT_BASE": str(free_port() - 1),
        "SMART_NODE_LEAF_PORT": str(free_port()),
        "SMART_NODE_MONITOR_PORT": str(free_port()),
        "SMART_NODE_WEB_PORT": str(free_port()),
        "SMART_STATION_GPIO": "simulated",
    }.items():
        monkeypatch.setenv(name, value)
    nobody = free_port()  # no hub listens here: the hub is down for the whole test
    result = runner.invoke(
        app,
        [
            "station", "provision", "--station", STATION,
            "--hub-key", str(hub_keys.directory / "hub.pub"),
            "--nkey-seed", str(seed_file),
            "--hub-leafnode", f"nats-leaf://127.0.0.1:{nobody}",
            "--etc-dir", str(tmp_path / "etc-smart"),
            "--unit-dir", str(tmp_path / "units"),
            "--user", "smart", "--no-create-user", "--no-chown",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    yield tmp_path, hub_keys


def test_the_units_pass_systemd_analyze_verify_and_never_wait_for_the_network(
    provisioned: tuple[Path, KeyStore],
) -> None:
    root, _ = provisioned
    units = sorted((root / "units").glob("*.service"))
    assert [u.name for u in units] == [systemd.leaf_unit_name(STATION), systemd.node_unit_name(STATION)]
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: system-packages.txt installs Debian's systemd"
    done = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stderr.strip()) == (0, ""), done.stderr
    for unit in units:
        text = unit.read_text()
        assert "network-online" not in text and "Requires=" not in text
        assert unit_values(text, "Restart") == ["always"] and unit_values(text, "StartLimitIntervalSec") == [
            "0"
        ]
        assert unit_values(text, "User") == ["smart"] and unit_values(text, "NoNewPrivileges") == ["yes"]
    leaf_conf = root / "etc-smart" / "nats" / f"leaf-{STATION}.conf"
    assert leaf_conf.stat().st_mode & 0o777 == 0o600
    seed = (root / f"{STATION}.nk").read_text().strip()
    assert json.dumps(seed) in leaf_conf.read_text()  # the station's nkey signs the leaf in
    anchor = root / "var-lib-smart" / "keys" / "hub.pub"
    assert anchor.read_bytes() == (root / "hub-keys" / "hub.pub").read_bytes()


def test_a_bad_hub_key_or_seed_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "hub.pub").write_text("not a key")
    (tmp_path / "seed.nk").write_text("SUAAAA\n")
    result = CliRunner().invoke(
        app,
        [
            "station", "provision", "--station", STATION, "--hub-key", str(tmp_path / "hub.pub"),
            "--nkey-seed", str(tmp_path / "seed.nk"), "--hub-leafnode", "nats-leaf://127.0.0.1:1",
            "--etc-dir", str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "units"), "--user", "smart",
            "--no-create-user", "--no-chown",
        ],
        env={"SMART_STATE_DIR": str(tmp_path / "state"), "SMART_SETTINGS_FILE": "/nonexistent/smart.toml"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--hub-key" in result.output and "not a readable PEM public key" in result.output
    assert not (tmp_path / "etc").exists() and not (tmp_path / "units").exists()


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _exec_start(unit: Path, env_file: Path | None) -> tuple[list[str], dict[str, str]]:
    text = unit.read_text()
    (command,) = unit_values(text, "ExecStart")
    env = {"PATH": os.environ["PATH"]}
    if env_file is not None:
        (named,) = unit_values(text, "EnvironmentFile")
        assert Path(named) == env_file
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            env[name] = value
    return shlex.split(command), env


async def test_the_station_started_as_its_units_say_enforces_its_stored_revision_with_the_hub_down(
    provisioned: tuple[Path, KeyStore],
) -> None:
    root, hub_keys = provisioned
    state = root / "var-lib-smart"
    envelope = pt2_envelope(hub_keys)
    revision = contract_bundle.verify(envelope, hub_keys.verifying_key("hub")).revision
    store = StationStore(state / "stations" / STATION / "store.sqlite3")
    store.activate("penetrant", revision, envelope=envelope)
    store.close()

    env_file = root / "etc-smart" / f"station-{STATION}.env"
    leaf_cmd, leaf_env = _exec_start(root / "units" / systemd.leaf_unit_name(STATION), None)
    node_cmd, node_env = _exec_start(root / "units" / systemd.node_unit_name(STATION), env_file)
    assert node_cmd[1:] == ["node", "run", "--station", STATION]
    logs = root / "logs"
    logs.mkdir()
    processes = []
    with contextlib.ExitStack() as stack:
        for name, cmd, env in (("leaf", leaf_cmd, leaf_env), ("node", node_cmd, node_env)):
            process = _start(cmd, env, logs / f"{name}.log")
            processes.append(process)
            stack.callback(_stop, process)
        assert node_env["SMART_NODE_STATION"] == STATION  # who the station is comes from the unit
        port = int(node_env["SMART_NODE_LEAF_PORT"])
        answer = await _decide_when_up(f"nats://127.0.0.1:{port}", processes, logs)
        decision = answer["decision"]
        assert isinstance(decision, dict)
        assert decision["revisions"] == {"penetrant": revision}
        # Judged by the stored revision, not refused for want of one ("no valid contract").
        assert all("no valid contract" not in json.dumps(r) for r in decision["reasons"])
        assert str(answer["entry"]).isdigit()  # durable on the station's ledger before the reply


def pt2_envelope(hub_keys: KeyStore) -> bytes:
    """The penetrant contract signed for pt-2: a second penetrant station shaped as pt-1 is."""
    contract, pt1 = reference(SmartContract, "penetrant"), reference(Station, "pt-1")
    assert isinstance(contract, SmartContract) and isinstance(pt1, Station)
    spec = pt1.spec.model_copy(
        update={"station_id": STATION, "node_selector": {"smart.aero/station": STATION}}
    )
    pt2 = pt1.model_copy(update={"spec": spec})
    bundle = contract_bundle.compile_bundle(contract, pt2)
    assert bundle["station"] == STATION
    return contract_bundle.sign(bundle, hub_keys.signing_key("hub")).envelope


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def _decide_when_up(
    url: str, processes: list[subprocess.Popen[bytes]], logs: Path
) -> dict[str, object]:
    event = {
        "action": "start",
        "at": datetime.now(UTC).isoformat(),
        "station": STATION,
        "job": "J-1",
        "person": "B-0001",
    }
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    last: Exception | None = None
    while loop.time() < deadline:
        for process in processes:
            if process.poll() is not None:
                found = {p.name: p.read_text()[-3000:] for p in logs.iterdir()}  # noqa: ASYNC240
                raise AssertionError(f"{process.args!r} exited {process.returncode}: {found}")
        try:
            leaf = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
        except Exception as err:
            last = err
            await asyncio.sleep(0.2)
            continue
        try:
            reply = await leaf.request(
                subjects.decide(STATION), json.dumps({"event": event}).encode(), timeout=5
            )
            answer: dict[str, object] = json.loads(reply.data)
            return answer
        except Exception as err:
            last = err
            await asyncio.sleep(0.2)
        finally:
            await leaf.close()
    raise AssertionError(f"the station never answered a decision: {last!r}; python {sys.executable}")


def test_the_pis_leaf_config_is_the_charts_station_pod_leaf_config(tmp_path: Path) -> None:
    """One station leaf, two ways to run it: the unit's config and the chart's differ only in where
    they listen and how the nkey is given (a file on the Pi, the pod's environment from the Secret)."""
    keys = KeyStore(tmp_path / "keys")
    hub = "nats-leaf://hub.shop.example:7422"
    objects = render({"stations": [station_value(STATION, keys)], "nats": {"leafnodeUrl": hub}})
    pod = find(objects, "ConfigMap", f"smart-station-{STATION}-leaf")["data"]["leaf.conf"]
    settings = Settings(state_dir=Path("/var/lib/smart"), stations=6, node_station=STATION)
    unit = systemd.leaf_config(settings, STATION, hub_leafnode=hub, nkey_seed="SU-seed")
    normalised_unit = unit.replace('"SU-seed"', "$SMART_STATION_NKEY").replace(
        'host: "127.0.0.1"', 'host: "0.0.0.0"'
    )
    assert [line.strip() for line in normalised_unit.splitlines() if line.strip()] == [
        line.strip() for line in pod.splitlines() if line.strip()
    ]
    tls = {"leafnodeTls": {"secretName": "hub-tls", "caConfigMap": "hub-ca"}, "leafnodeUrl": hub}
    objects = render({"stations": [station_value(STATION, keys)], "nats": tls})
    pod = find(objects, "ConfigMap", f"smart-station-{STATION}-leaf")["data"]["leaf.conf"]
    ca = Path("/etc/smart/nats/hub-ca.crt")
    unit = systemd.leaf_config(settings, STATION, hub_leafnode=hub, nkey_seed="SU-seed", hub_ca=ca)
    normalised_unit = (
        unit.replace('"SU-seed"', "$SMART_STATION_NKEY")
        .replace('host: "127.0.0.1"', 'host: "0.0.0.0"')
        .replace(str(ca), "/etc/nats-ca/ca.crt")
    )
    assert "tls: { ca_file:" in pod
    assert [line.strip() for line in normalised_unit.splitlines() if line.strip()] == [
        line.strip() for line in pod.splitlines() if line.strip()
    ]
