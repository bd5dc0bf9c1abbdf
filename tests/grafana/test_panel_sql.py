"""Every PostgreSQL panel of the generated dashboards, run as ``smart_grafana`` on a real station's ledger.

One pt-1 station runs under the reference penetrant contract (real NATS, its node agent shipping to
the hub's ledger intake on real PostgreSQL): an operator whose eye exam lapsed is refused at badge-in,
one job walks through to hand-off, a second has its drying temperature over the limit (a deny and an
NCR). The hub's own services then do what they do on that log: ComplianceCentral indexes the refusals,
QACentral indexes the NCR,
ClientManager holds the order's customer,
MaintenanceHub records a calibration falling due, InventoryHub receives a lot about to expire, a
witness cosigns the checkpoint and an alarm is raised. Each panel's SQL is taken from the checked-in
dashboard JSON, Grafana's macros expanded as the PostgreSQL datasource expands them, and run on the
read-only role the chart's datasource uses: every panel returns rows with the columns it draws.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from smart.contracts import manifests
from smart.contracts.models import SmartContract
from smart.grafana import dashboards, queries
from smart.hub import database_roles
from smart.hub.clients import store as clients_store
from smart.hub.compliance import index as compliance_index
from smart.hub.inventory import store as inventory_store
from smart.hub.inventory.models import LotIn, MaterialIn
from smart.hub.qa import store as qa_store
from smart.hub.service_log import CLIENT_MANAGER, ServiceNodeLog
from smart.keys import KeyStore
from smart.ledger import hub_store, witness
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase
from tests.hub import shop as work_shop
from tests.hub.conftest import HubDatabase
from tests.hub.maintenance import shop as maintenance_shop
from tests.node.conftest import Hub, eventually
from tests.node.test_job_walkthrough import (
    PENETRANT_SHOP,
    PENETRANT_START,
    PENETRANT_STEPS,
    at,
    bench,
    checks_done,
    reading,
    walk_penetrant_to_the_gate,
)

REPO = Path(__file__).resolve().parents[2]
_TIME_FILTER = re.compile(r"\$__timeFilter\(((?:[^()]|\([^()]*\))*)\)")
_TIME_GROUP = re.compile(r"\$__timeGroupAlias\(((?:[^()]|\([^()]*\))*), '1h'\)")


def expand(raw: str, start: datetime, end: datetime) -> str:
    """Grafana's PostgreSQL macros as the datasource expands them for a range and a 1 h interval."""
    text = _TIME_FILTER.sub(lambda m: f"{m[1]} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'", raw)
    text = _TIME_GROUP.sub(lambda m: f'floor(extract(epoch from {m[1]})/3600)*3600 AS "time"', text)
    assert "$__" not in text, f"a macro the test does not expand: {text}"
    return text


def generated_panels() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, raw SQL, format) of every PostgreSQL target in the chart's JSON."""
    found = []
    for path in sorted(dashboards.CHART_DASHBOARDS.glob("*.json")):
        for title, raw, fmt in dashboards.sql_panels(path.read_text(encoding="utf-8")):
            found.append((path.name, title, raw, fmt))
    return found


def expected_columns(raw: str) -> tuple[str, ...]:
    """The columns the panel's query in :mod:`smart.grafana.queries` declares (matched by its SQL)."""
    declared = [v for v in vars(queries).values() if isinstance(v, queries.PanelSql) and v.sql == raw]
    assert declared, f"a panel whose SQL is not in smart.grafana.queries: {raw[:80]}"
    return declared[0].columns


async def test_every_postgresql_panel_returns_rows_with_its_columns_from_a_real_stations_ledger(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, database: FreshDatabase, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await checks_done(pt)
        refused = await pt.job("badge", person="op-9", at=at(0))
        assert not refused["allowed"]  # the lapsed eye exam: a genuine deny
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
        assert (await pt.job("release", signer="op-7", at=at(200)))["allowed"]
        assert (await pt.job("handoff", at=at(201)))["state"] == "handed-off"
        assert (await pt.job("badge", person="op-7", at=at(210)))["allowed"]
        scanned = await pt.job(
            "scan", job="J-2", po="PO-4411", line="1", part="BRK-220", serial="SN-001", at=at(211)
        )
        assert scanned["allowed"], scanned["reasons"]
        assert (await pt.job("start", at=at(212), **PENETRANT_START))["allowed"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=15):
            if step["step"] == "dry":
                hot = {"part-temperature": reading(150, "°F"), "time-at-max-temperature": reading(4, "min")}
                assert not (await pt.job("step", at=at(minutes * 15), step="dry", readings=hot))["allowed"]
                break
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
        assert pt.entries("qa.ncr.opened")
        runtime = pt.runtime
        last = runtime.agent.ledger.entries(0)[-1].node_seq if runtime.agent.ledger else 0
        await eventually(
            lambda: runtime.agent.store is not None and runtime.agent.store.shipped_seq("pt-1") >= last,
            what="pt-1's ledger at the hub",
        )

    # The hub's services on that database, as they run at the hub.
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    qa_store.migrate(database.url)
    inventory_store.migrate(database.url)
    clients_store.migrate(database.url)
    clients = clients_store.ClientManager(
        app_url, ledger=ServiceNodeLog(tmp_path / "ledger", keys, node=CLIENT_MANAGER)
    )
    try:
        clients.add_client(work_shop.client(), actor=work_shop.QM)
        clients.add_po(work_shop.order(), actor=work_shop.QM)  # PO-4411, the order pt-1's travelers name
    finally:
        clients.close()
    compliance_index.migrate(database.url)
    specs = [
        i.manifest.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        for i in manifests.load([REPO / "contracts"])
        if isinstance(i.manifest, SmartContract)
    ]
    decisions = compliance_index.DecisionIndex(
        psycopg.connect(app_url, autocommit=True),
        url=app_url,
        standards=compliance_index.rule_standards(specs),
    )
    try:
        assert decisions.index_once() >= 2  # ComplianceCentral's index of the refusals
    finally:
        decisions.close()
    ncrs = qa_store.NcrIndex.connect(app_url)
    try:
        assert ncrs.index_once() >= 1
    finally:
        ncrs.close()
    today = datetime.now(UTC).date()
    maintenance = maintenance_shop.make(HubDatabase(database.url, app_url), tmp_path / "maintenance")
    try:
        maintenance.hub.register(maintenance_shop.meter(), actor="qm-anna")
        maintenance.hub.record_calibration(
            "UV-METER-1",
            maintenance_shop.certificate(
                datetime.now(UTC) - timedelta(days=150), next_due=today + timedelta(days=20)
            ),
            actor="qm-anna",
        )
    finally:
        maintenance.hub.close()
    inventory = inventory_store.InventoryHub(
        app_url,
        ledger=ServiceNodeLog(tmp_path / "ledger", keys, node=inventory_store.NODE),
        stations=["pt-1"],
    )
    try:
        inventory.add_material(
            MaterialIn(
                id="penetrant",
                form="bulk",
                unit="L",
                supplier="Magnaflux",
                min_stock=5,
                lead_time_days=10,
                stations=("pt-1",),
            ),
            actor="qm-anna",
        )
        inventory.receive(
            LotIn(
                id="PEN-3001",
                material="penetrant",
                supplier="Magnaflux",
                certificate="C-77",
                received_on=today - timedelta(days=300),
                expires_on=today + timedelta(days=40),
                quantity=20,
                unit="L",
                stations=("pt-1",),
            ),
            actor="qm-anna",
        )
    finally:
        inventory.close()
    with hub_store.HubLog.connect(
        app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    ) as log:
        key = keys.signing_key("witness-mt-1")
        log.register_witness(key.verifying, admin=keys.signing_key("ledger-admin"))
        log.witness(witness.Witness(key, log_key=keys.signing_key("hub").verifying, origin=hub_store.ORIGIN))
        log.raise_alarm("pt-1", 1, "refused", "a batch from pt-1 did not verify (the test's own alarm)")

    grafana_url = database_roles.ensure_grafana_role(database.url, tmp_path / "secrets")
    panels = generated_panels()
    assert len(panels) >= 15
    start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(hours=1)
    with psycopg.connect(grafana_url, autocommit=True) as conn:
        assert conn.info.user == database_roles.GRAFANA_ROLE
        for board, title, raw, fmt in panels:
            cursor = conn.execute(expand(raw, start, end).encode())
            assert cursor.description is not None
            columns = tuple(c.name for c in cursor.description)
            rows = cursor.fetchall()
            assert columns == expected_columns(raw), (board, title, columns)
            assert rows, f"{board}: panel {title!r} returned no rows"
            if fmt == "time_series":
                assert columns[0] == "time", (board, title)
        outcomes: dict[str, int] = dict(
            conn.execute(expand(queries.DECISIONS_BY_OUTCOME.sql, start, end).encode()).fetchall()
        )
        assert outcomes.get("deny", 0) >= 2 and outcomes.get("allow", 0) >= 1, outcomes
        rules = {
            r[2]: r[3] for r in conn.execute(expand(queries.TOP_REFUSING_RULES.sql, start, end).encode())
        }
        assert {"pt-near-vision", "pt-dry-part-temperature"} <= set(rules), rules
        assert rules["pt-near-vision"] == "nas410", rules  # the standard the rule cites (NAS 410 vision)
        by_station = conn.execute(expand(queries.YIELD_BY_STATION.sql, start, end).encode()).fetchall()
        assert [tuple(r[:3]) for r in by_station] == [("pt-1", 2, 1)]  # J-1 first pass, J-2 with its NCR
        by_customer = conn.execute(expand(queries.YIELD_BY_CUSTOMER.sql, start, end).encode()).fetchall()
        assert [tuple(r[:3]) for r in by_customer] == [("Aerospar Structures", 2, 1)]
        (checkpoint,) = conn.execute(queries.LATEST_CHECKPOINT.sql).fetchall()
        assert checkpoint[2] >= 1 and "witness-mt-1" in checkpoint[3].split(", "), checkpoint


def test_expand_leaves_no_macro_and_keeps_the_column() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    text = expand(queries.ENTRIES_OVER_TIME.sql, start, start + timedelta(days=1))
    assert "BETWEEN '2026-01-01T00:00:00+00:00' AND '2026-01-02T00:00:00+00:00'" in text
    assert "floor(extract(epoch from (body->>'ts')::timestamptz)/3600)*3600 AS \"time\"" in text
