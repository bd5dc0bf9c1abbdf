"""The files of the Helm chart (``charts/smart/``) that are generated from SMART's own code.

The hub NATS's authorization block must give each station exactly the permissions
:func:`smart.access.stationauth.station_permissions` defines, no more. Writing them by hand in
a template would make two definitions that drift apart, so the chart carries the permissions of
one placeholder station (``files/station-permissions.json``), and its template replaces the
placeholder with each station's id; a test renders the chart and compares every station's
permissions with the function's.
"""

from __future__ import annotations

import json
from pathlib import Path

from smart import settings
from smart.access import stationauth
from smart.bus import hub_roles, subjects

#: Stands for the station id in the chart's permissions file (never a valid station id: underscores).
PLACEHOLDER = "__STATION__"
CHART = Path(__file__).resolve().parents[2] / "charts" / "smart"
PERMISSIONS_FILE = CHART / "files" / "station-permissions.json"
#: Each hub role's NATS permissions (``smart.bus.hub_roles.permissions``) for the ``hubs:`` values.
HUB_ROLES_FILE = CHART / "files" / "hub-role-permissions.json"
#: The settings' station ids and port bases, so the chart gives a station the ports its agent expects.
FLOOR_FILE = CHART / "files" / "floor.json"
#: Each hub role's own ledger nodes and their key names (``hub_roles.LEDGER_NODES``): the keys of
#: the keys Secret the Business pod mounts (its node's only), and what the README lists.
HUB_LEDGER_NODES_FILE = CHART / "files" / "hub-ledger-nodes.json"


def station_permissions(station: str) -> stationauth.Permissions:
    """What a station's leaf may do at the hub: the same as on the embedded floor (``smart up``)."""
    return stationauth.station_permissions(station, keyed_buckets=subjects.STATION_KEYED_BUCKETS)


def permissions_template() -> str:
    """The NATS permissions of a station, with :data:`PLACEHOLDER` where its id goes, as JSON."""
    permissions = station_permissions(PLACEHOLDER)
    document = {
        "publish": {"allow": list(permissions.publish)},
        "subscribe": {"allow": list(permissions.subscribe)},
        "allow_responses": permissions.allow_responses,
    }
    return json.dumps(document, indent=2) + "\n"


def hub_role_permissions(role: hub_roles.HubRole, stations: list[str]) -> hub_roles.RolePermissions:
    """What a hub role's user may do at the hub NATS: the same as under ``smart up``."""
    return hub_roles.permissions(role, stations)


def hub_roles_template() -> str:
    """Each hub role's NATS permissions as JSON; ``perStation`` holds what each station adds
    (with :data:`PLACEHOLDER` where its id goes), which the template appends per station."""
    document: dict[str, object] = {}
    for role in hub_roles.HubRole:
        alone = hub_role_permissions(role, [])
        with_one = hub_role_permissions(role, [PLACEHOLDER])
        publish: dict[str, list[str]] = {"allow": list(alone.publish)}
        subscribe: dict[str, list[str]] = {"allow": list(alone.subscribe)}
        if alone.deny_publish:
            publish["deny"] = list(alone.deny_publish)
        if alone.deny_subscribe:
            subscribe["deny"] = list(alone.deny_subscribe)
        document[role.value] = {
            "user": hub_roles.user_name(role),
            "permissions": {
                "publish": publish,
                "subscribe": subscribe,
                "allow_responses": alone.allow_responses,
            },
            "perStation": [s for s in with_one.publish if s not in alone.publish],
        }
    return json.dumps(document, indent=2) + "\n"


def floor_template() -> str:
    """The ports a station node's own station uses (``node_*`` settings): the chart's station pods."""
    defaults = settings.Settings.model_fields
    document = {
        "nodeLeafPort": defaults["node_leaf_port"].default,
        "nodeMonitorPort": defaults["node_monitor_port"].default,
        "nodeWebPort": defaults["node_web_port"].default,
    }
    return json.dumps(document, indent=2) + "\n"


def hub_ledger_nodes_template() -> str:
    """Each role's shipped ledger nodes with the key each signs with (``gathering.NODE_KEY_NAMES``)."""
    from smart.hub.gathering import NODE_KEY_NAMES

    document = {
        role.value: [{"node": node, "key": NODE_KEY_NAMES.get(node, node)} for node in nodes]
        for role, nodes in hub_roles.LEDGER_NODES.items()
    }
    return json.dumps(document, indent=2) + "\n"


def write(chart: Path = CHART) -> list[Path]:
    """Write every generated file of the chart; returns their paths."""
    written = []
    for relative, text in (
        (PERMISSIONS_FILE.relative_to(CHART), permissions_template()),
        (FLOOR_FILE.relative_to(CHART), floor_template()),
        (HUB_ROLES_FILE.relative_to(CHART), hub_roles_template()),
        (HUB_LEDGER_NODES_FILE.relative_to(CHART), hub_ledger_nodes_template()),
    ):
        path = chart / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m smart.provision.chart: regenerate after stationauth or settings change
    for written in write():
        print(written)
