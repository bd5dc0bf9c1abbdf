"""``smart up`` as the shop's admin meets it: one command, the whole floor, a clean stop."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import psutil
import psycopg
import pytest

from smart.bus.mirror import mirror_bucket
from smart.node.kiosk.app import SCREEN_TOKEN_FILE
from smart.runtime.floor import Floor
from smart.settings import Settings
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import make_settings
from tests.runtime.conftest import (
    SMART,
    DemoFloor,
    RunningFloor,
    floor_env,
    fresh_state_root,
    start_up,
    stop,
)


def _name(process: psutil.Process) -> str | None:
    try:
        return str(process.name())
    except psutil.NoSuchProcess:
        return None


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except psutil.NoSuchProcess:
        return []


def _service(status: dict[str, object], name: str) -> dict[str, object]:
    services = status["services"]
    assert isinstance(services, list)
    for service in services:
        if service["name"] == name:
            return dict(service)
    raise AssertionError(f"{name} missing from /api/status: {status}")


def _poll_status(
    floor: RunningFloor, until: object, deadline_s: float = STATE_DEADLINE_S
) -> dict[str, object]:
    """Poll /api/status until ``until(status)`` holds; fail with the last status after the deadline."""
    assert callable(until)
    deadline = time.monotonic() + deadline_s
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            status = floor.api_status()
        except httpx.HTTPError:
            status = {}
        if status and until(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"condition not reached in {deadline_s} s; last /api/status: {status}")


def _page_row(html: str, service: str) -> str:
    start = html.index(f'data-service="{service}"')
    return html[start : html.index("</tr>", start)]


def _page_row_eventually(
    floor: RunningFloor, service: str, health: str, *, or_restarts: int | None = None
) -> bool:
    """Whether the server-rendered status page shows ``service`` as ``health`` before the deadline.

    A crashed server is unhealthy only until the supervisor has restarted it, which on a busy machine
    may be over before the page is read again: with ``or_restarts``, a row that already counts that
    many restarts has shown the crash too.
    """
    deadline = time.monotonic() + STATE_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            row = _page_row(
                httpx.get(floor.status_url + "admin/status", timeout=STATE_DEADLINE_S).text, service
            )
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if f">{health}<" in row:
            return True
        if or_restarts is not None and f'class="restarts">{or_restarts}<' in row:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def six_stations() -> Iterator[RunningFloor]:
    """One ``smart up`` of six stations for the tests that only look at it, or leave it as they found it.

    Starting the whole floor is most of such a test's time; the tests that stop it, restart it or
    start it with other flags start their own.
    """
    with fresh_state_root() as root:
        settings = make_settings(root / "state", stations=6)
        floor = start_up(settings)
        try:
            _poll_status(floor, lambda s: s["healthy"] is True)
            yield floor
        finally:
            stop(floor)


def test_up_brings_postgres_hub_and_six_station_leaves_healthy(six_stations: RunningFloor) -> None:
    floor, up_settings = six_stations, six_stations.settings
    status = _poll_status(floor, lambda s: s["healthy"] is True)
    services = status["services"]
    assert isinstance(services, list)
    assert [s["name"] for s in services][:8] == [
        "postgres",
        "hub",
        "leaf-pt-1",
        "leaf-mt-1",
        "leaf-ut-1",
        "leaf-ht-1",
        "leaf-cp-1",
        "leaf-sr-1",
    ]
    assert [s["name"] for s in services if s["kind"] == "station-agent"] == [
        f"node-{station}" for station in up_settings.station_ids
    ]
    assert all(s["healthy"] for s in services)
    assert {s["jetstream_domain"] for s in services if s["kind"] == "station-leaf"} == set(
        up_settings.station_ids
    )
    page = httpx.get(floor.status_url + "admin/status", timeout=STATE_DEADLINE_S)
    assert page.status_code == 200
    assert page.text.count(">healthy<") == 14  # 8 servers and 6 station agents
    assert "/api/status" in page.text  # the page refreshes itself from the API
    assert httpx.get(floor.status_url + "healthz", timeout=STATE_DEADLINE_S).json() == {"ok": True}
    metrics = httpx.get(floor.status_url + "metrics", timeout=STATE_DEADLINE_S).text
    assert 'smart_service_healthy{kind="station-leaf",service="leaf-sr-1"} 1.0' in metrics
    # `smart up` prints where each /metrics is: the hub's (with its ledger intake) and every station's.
    assert floor.urls["hub metrics"] == floor.status_url + "metrics"
    # The Business hub's client API is served on the same port; a request without a key is refused.
    client_api = httpx.get(floor.urls["client API (Business hub)"], timeout=STATE_DEADLINE_S).json()
    assert "/api/v1/client/pos" in client_api["paths"]
    refused = httpx.get(floor.status_url + "api/v1/client/pos", timeout=STATE_DEADLINE_S)
    assert refused.status_code == 401 and refused.json()["detail"].startswith("authorization:")
    assert "# TYPE smart_hub_ledger_entries_ingested_total counter" in metrics
    assert 'smart_hub_ncrs_open{station="pt-1"} 0.0' in metrics  # QACentral's, read at the scrape
    for station in up_settings.station_ids:
        scraped = httpx.get(floor.urls[f"station {station} metrics"], timeout=STATE_DEADLINE_S)
        assert scraped.status_code == 200, station
        assert f'smart_station_ledger_entries{{station="{station}"}}' in scraped.text

    for station in up_settings.station_ids:  # each station screen's sign-on link, with its own secret
        token = (up_settings.station_data_dir(station) / SCREEN_TOKEN_FILE).read_text().strip()
        link = floor.urls[f"station {station} screen"]
        assert link.endswith(f"/kiosk/screen?token={token}"), link
    signed_on = httpx.get(floor.urls["station pt-1 screen"], timeout=STATE_DEADLINE_S, follow_redirects=False)
    assert signed_on.status_code == 303 and "smart_kiosk_screen" in signed_on.headers.get("set-cookie", "")
    scans = up_settings.station_data_dir("pt-1") / "scans"
    assert any(line.split() == ["station", "pt-1", "scans", str(scans)] for line in floor.output)
    # Each station runs its modules under the contracts in force: the Gatekeeper at pt-1 answers a
    # badge-in on the station's own leaf, judged from the station's records (none yet: refused).
    reply = asyncio.run(_ask_station(up_settings, "pt-1", "gatekeeper", "badge"))
    assert reply["module"] == "gatekeeper" and reply["outcome"] == "deny", reply
    revisions = reply["revisions"]
    assert isinstance(revisions, dict) and revisions.get("penetrant"), reply
    assert isinstance(reply["entry"], int)

    # The reference contracts were applied at start (node smart-embedded); the hub services gather
    # that node's log into the hub's PostgreSQL log, beside what the stations ship.
    owner_url = Floor(up_settings, nats_servers=False).database_url()
    deadline = time.monotonic() + STATE_DEADLINE_S
    gathered = 0
    while time.monotonic() < deadline and gathered < 6:
        with psycopg.connect(owner_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM ledger_entries WHERE node = 'smart-embedded'"
                " AND convert_from(entry, 'UTF8')::jsonb->>'kind' = 'contract.deployed'"
            ).fetchone()
        gathered = int(row[0]) if row else 0
        time.sleep(0.2)
    assert gathered >= 6, f"{gathered} contract.deployed entries of smart-embedded in the hub log"


async def _ask_station(settings: Settings, station: str, module: str, verb: str) -> dict[str, object]:
    """A module request on the station's own leaf, retried until the station's modules answer."""
    leaf = await nats.connect(f"nats://{settings.host}:{settings.station_nats_port(station)}")
    event = {"action": "operate", "at": "2026-11-28T08:00:00+00:00", "station": station, "person": "B-1042"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STATE_DEADLINE_S
    try:
        while loop.time() < deadline:
            try:
                message = await leaf.request(
                    f"station.{station}.{module}.{verb}", json.dumps({"event": event}).encode(), timeout=2
                )
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.2)
                continue
            return dict(json.loads(message.data))
        raise AssertionError(f"station {station}'s {module} never answered")
    finally:
        await leaf.close()


#: A hub bucket the station may read (its own keys only, as every station signs in with least
#: privilege); its runtime refuses this record's unknown kind, which is not what is tested here.
TOPOLOGY_BUCKET = "station-records"


def _greeting(station: str) -> str:
    return f"{station}.topology.greeting"


async def _put_on_hub_and_read_from_station(settings: Settings, station: str, value: bytes) -> bytes:
    hub = await nats.connect(f"nats://{settings.host}:{settings.nats_port}", **settings.hub_nats_signin())
    leaf = await nats.connect(f"nats://{settings.host}:{settings.station_nats_port(station)}")
    try:
        bucket = await hub.jetstream().key_value(TOPOLOGY_BUCKET)
        await bucket.put(_greeting(station), value)
        mirror = await mirror_bucket(leaf.jetstream(), TOPOLOGY_BUCKET)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STATE_DEADLINE_S
        while loop.time() < deadline:
            try:
                entry = await mirror.get(_greeting(station))
            except Exception:
                await asyncio.sleep(0.02)
                continue
            if entry.value == value:
                return entry.value
            await asyncio.sleep(0.02)
        raise AssertionError(f"{value!r} never reached station {station}'s mirror")
    finally:
        await leaf.close()
        await hub.close()


async def _read_local_mirror(settings: Settings, station: str) -> bytes:
    leaf = await nats.connect(f"nats://{settings.host}:{settings.station_nats_port(station)}")
    try:
        mirror = await leaf.jetstream().key_value(TOPOLOGY_BUCKET)
        entry = await mirror.get(_greeting(station))
        assert entry.value is not None
        return entry.value
    finally:
        await leaf.close()


def test_value_put_on_hub_is_read_from_station_3_own_domain_and_killed_leaf_comes_back(
    six_stations: RunningFloor,
) -> None:
    floor, up_settings = six_stations, six_stations.settings
    _poll_status(floor, lambda s: s["healthy"] is True)
    station = up_settings.station_ids[2]
    assert station == "ut-1"
    read = asyncio.run(_put_on_hub_and_read_from_station(up_settings, station, b"penetrant line ready"))
    assert read == b"penetrant line ready"

    leaf = _service(floor.api_status(), f"leaf-{station}")
    pid, restarts = leaf["pid"], leaf["restarts"]
    assert isinstance(pid, int) and isinstance(restarts, int)
    psutil.Process(pid).send_signal(signal.SIGKILL)

    down = _poll_status(floor, lambda s: not _service(s, f"leaf-{station}")["healthy"])
    assert _service(down, f"leaf-{station}")["detail"]
    assert not down["healthy"]
    assert _page_row_eventually(floor, f"leaf-{station}", "unhealthy", or_restarts=restarts + 1)

    back = _poll_status(
        floor,
        lambda s: (
            _service(s, f"leaf-{station}")["healthy"]
            and _service(s, f"leaf-{station}")["restarts"] == restarts + 1
        ),
    )
    assert back["healthy"] is True
    assert _service(back, f"leaf-{station}")["pid"] != pid
    assert _page_row_eventually(floor, f"leaf-{station}", "healthy")
    # The mirror lives in the station's own store: it is still there after the restart.
    assert asyncio.run(_read_local_mirror(up_settings, station)) == b"penetrant line ready"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stop_signal_stops_every_process_the_floor_started_and_exits_zero(
    state_root: Path, running_floors: list[RunningFloor], stop_signal: signal.Signals
) -> None:
    # Two stations: every process is stopped whatever their number, and six would only start slower.
    up_settings = make_settings(state_root / "state", stations=2)
    floor = start_up(up_settings)
    running_floors.append(floor)
    _poll_status(floor, lambda s: s["healthy"] is True)
    started = floor.descendants()
    names = [_name(p) for p in started]  # a short-lived postgres backend may be gone already
    assert "postgres" in names
    assert names.count("nats-server") == 3  # the hub's and a leaf per station
    assert len([p for p in started if "node" in " ".join(_cmdline(p))]) == 2

    assert floor.interrupt(stop_signal) == 0
    left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {[(p.pid, p.name()) for p in left]}"
    assert "SMART floor stopped." in floor.process.stdout.read() if floor.process.stdout else True


def test_second_up_on_same_state_directory_keeps_the_database(
    state_root: Path, running_floors: list[RunningFloor]
) -> None:
    # One station: what a restart keeps is the hub's, whatever the number of stations.
    up_settings = make_settings(state_root / "state", stations=1)
    first = start_up(up_settings)
    running_floors.append(first)
    _poll_status(first, lambda s: s["healthy"] is True)
    url = Floor(up_settings, nats_servers=False).database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE calibration (asset text PRIMARY KEY, due date NOT NULL)")
        conn.execute("INSERT INTO calibration VALUES ('UV-METER-7', '2027-05-01')")
    # The first start seeded the contracts folder (SMART_CONTRACTS_DIR, absolute) and said so.
    seeded = f"seeded from {up_settings.contracts_dir}/"
    assert any("contract penetrant" in line and seeded in line for line in first.output), first.output
    # A Level 3 replaces penetrant's revision with smart apply; the quality manager approves it.
    revision = _apply_and_approve_penetrant(up_settings, uva_min=1300)
    applied = _contracts_listed(up_settings)["penetrant"]
    assert first.interrupt() == 0

    second = start_up(up_settings)
    running_floors.append(second)
    _poll_status(second, lambda s: s["healthy"] is True)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT asset, due::text FROM calibration").fetchall()
    assert rows == [("UV-METER-7", "2027-05-01")]
    # The hub's state wins: the restart kept the applied revision and said the directory's differs.
    (kept,) = [line for line in second.output if "contract penetrant" in line]
    assert f"kept revision {revision[:12]} in force" in kept and "not applied" in kept
    assert _contracts_listed(up_settings)["penetrant"] == applied
    assert second.interrupt() == 0


def _smart(settings: Settings, *args: str) -> str:
    result = subprocess.run(
        [SMART, *args], env=floor_env(settings), capture_output=True, text=True, timeout=STATE_DEADLINE_S
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _contracts_listed(settings: Settings) -> dict[str, str]:
    """``smart get contracts``: name → the revision shown."""
    lines = _smart(settings, "get", "contracts").splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in lines}


def _apply_and_approve_penetrant(settings: Settings, *, uva_min: int) -> str:
    """penetrant with a new UV-A minimum, applied with its author's signature and approved by the QM."""
    from smart.contracts import approval
    from smart.keys import KeyStore
    from tests.contracts.signatures import signature

    text = (Path(__file__).resolve().parents[2] / "contracts" / "penetrant.yaml").read_text()
    assert "limits: {min: 1000}" in text
    edited = settings.state_dir.parent / "penetrant-edited.yaml"
    edited.write_text(text.replace("limits: {min: 1000}", f"limits: {{min: {uva_min}}}", 1))
    revision = _smart(settings, "contract", "revision", str(edited)).strip()
    smart_id = KeyStore(settings.key_directory).signing_key(approval.SMART_ID_KEY)  # the floor's SMART-ID
    signers: list[tuple[str, approval.Act, str]] = [
        ("B-L3", "authorship", approval.LEVEL_3),
        ("B-QM", "approval", approval.QUALITY_MANAGER),
    ]
    for badge, act, authority in signers:
        token = signature(
            smart_id, badge=badge, act=act, contract="penetrant", revision=revision, authority=authority
        )
        (settings.state_dir.parent / f"{badge}.token").write_text(token)
    author = str(settings.state_dir.parent / "B-L3.token")
    held = _smart(settings, "apply", "-f", str(edited), "--credential", author)
    assert f"pending approval: revision {revision[:12]}" in held
    approver = str(settings.state_dir.parent / "B-QM.token")
    done = _smart(
        settings, "contract", "approve", "penetrant", "--revision", revision, "--credential", approver
    )
    assert f"approved revision {revision[:12]}" in done
    return revision


def _servers_of(state_dir: Path) -> list[int]:
    """Servers whose command line names this state directory (other tests' servers do not count)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(state_dir) in part for part in process.info["cmdline"] or []):
            found.append(process.pid)
    return found


def _run_up_expecting_refusal(settings: Settings, state_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [SMART, "up", "--state-dir", str(state_dir)],
        env=floor_env(settings),
        capture_output=True,
        text=True,
        timeout=STATE_DEADLINE_S,
    )
    assert _servers_of(state_dir) == [], "a refused start must start nothing"
    return result


def test_taken_port_is_named_in_one_line_and_nothing_starts(up_settings: Settings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((up_settings.host, up_settings.nats_leaf_port))
        squatter.listen()
        result = _run_up_expecting_refusal(up_settings, up_settings.state_dir)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(up_settings.nats_leaf_port) in lines[0]
    assert "hub NATS leafnode port" in lines[0] and "already in use" in lines[0]
    assert not (up_settings.state_dir / "postgres").exists()
    assert not (up_settings.state_dir / "nats").exists()  # no config written, no server started


def test_unwritable_state_directory_is_named_in_one_line_and_nothing_starts(
    up_settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory's parent should be")
    state_dir = blocker / "state"
    result = _run_up_expecting_refusal(up_settings, state_dir)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(state_dir) in lines[0] and "not writable" in lines[0]


def test_up_serves_smart_id_pages_behind_sign_in_and_commands_record_beside_it(
    six_stations: RunningFloor,
) -> None:
    floor, up_settings = six_stations, six_stations.settings
    _poll_status(floor, lambda s: s["healthy"] is True)
    base = floor.status_url.rstrip("/")
    anonymous = httpx.get(base + "/people", timeout=STATE_DEADLINE_S)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    home = httpx.get(base + "/", timeout=STATE_DEADLINE_S)  # the dashboard is for the signed in
    assert home.status_code == 303 and home.headers["location"] == "/login?next=/"
    assert httpx.get(base + "/api/credentials", timeout=STATE_DEADLINE_S).status_code == 401

    env = floor_env(up_settings)
    login = subprocess.run(
        [SMART, "people", "add-login", "qm-alice", "--role", "quality_manager", "--password-stdin"],
        input="correct horse battery\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=STATE_DEADLINE_S,
    )
    assert login.returncode == 0, login.stderr
    # SMART-ID records on its ledger node from this command while the floor's pages can too.
    person = subprocess.run(
        [SMART, "people", "add", "E-1001", "--name", "Dana Ortiz", "--badge", "B-1042", "--actor", "qm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=STATE_DEADLINE_S,
    )
    assert person.returncode == 0, person.stderr

    with httpx.Client(base_url=base, timeout=STATE_DEADLINE_S) as browser:
        signed = browser.post("/login", data={"username": "qm-alice", "password": "correct horse battery"})
        assert signed.status_code == 303
        people_page = browser.get("/people")
        assert people_page.status_code == 200 and "E-1001" in people_page.text


def _rules(reply: dict[str, object]) -> set[str]:
    reasons = reply.get("reasons") or []
    assert isinstance(reasons, list)
    return {str(r["rule"]) for r in reasons}


async def _badge_until(
    settings: Settings, station: str, badge: str, allowed: bool, *, rules: frozenset[str] = frozenset()
) -> dict[str, object]:
    """Badge in at ``station`` until the answer is ``allowed`` with ``rules`` (people arrive by publish)."""
    leaf = await nats.connect(f"nats://{settings.host}:{settings.station_nats_port(station)}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STATE_DEADLINE_S
    reply: dict[str, object] = {}
    try:
        while loop.time() < deadline:
            try:
                message = await leaf.request(
                    f"station.{station}.job.badge", json.dumps({"person": badge}).encode(), timeout=10
                )
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.2)
                continue
            reply = dict(json.loads(message.data))
            if reply.get("allowed") is allowed and rules <= _rules(reply):
                return reply
            await asyncio.sleep(0.2)
        raise AssertionError(f"badge {badge} at {station} never answered allowed={allowed}: {reply}")
    finally:
        await leaf.close()


def test_up_demo_shop_enrols_its_people_in_smart_id_and_sr_1_admits_only_its_own(
    demo_floor: DemoFloor,
) -> None:
    floor, up_settings, taken = demo_floor.floor, demo_floor.floor.settings, demo_floor.taken_web_port
    assert up_settings.web_port != taken and str(up_settings.web_port) in floor.status_url
    _poll_status(floor, lambda s: s["healthy"] is True)
    assert any("demo badge qm-1" in line and "sr-1" in line for line in floor.output), floor.output
    allowed = asyncio.run(_badge_until(up_settings, "pt-1", "op-7", True))
    assert allowed["state"] == "badged-in"
    # sr-1 holds SMART-ID's keys and its own people: pt-1's op-7 has neither access credential nor record
    asyncio.run(
        _badge_until(
            up_settings,
            "sr-1",
            "op-7",
            False,
            rules=frozenset({"access.signed-badge", "gatekeeper.no-access"}),
        )
    )
    assert asyncio.run(_badge_until(up_settings, "sr-1", "qm-1", True))["state"] == "badged-in"
    owner_url = Floor(up_settings, nats_servers=False).database_url()
    with psycopg.connect(owner_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM vault.people WHERE badge_id = ANY(%s)", (["op-7", "qm-1"],)
        ).fetchone()
        assets = conn.execute("SELECT asset_id FROM maintenance.equipment ORDER BY asset_id").fetchall()
    assert row is not None and row[0] == 2  # SMART-ID holds them: the stations got them by its publish
    assert [a[0] for a in assets] == ["TAM-146040", "UV-METER-1"]  # the demo's equipment: MaintenanceHub's
