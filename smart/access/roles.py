"""Hub roles and what each may do (``data/roles.yaml``): operator, level 3, quality manager, auditor, admin,
buyer.

A permission is a plain name (``credentials.issue``). The web pages and the
API ask :func:`allows` before acting; a refusal is logged by the caller with
who, what and where. Auditors hold only ``*.read`` permissions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from functools import cache

from smart.access.schemes import DATA, load_yaml


class Role(enum.StrEnum):
    OPERATOR = "operator"
    LEVEL3 = "level3"
    QUALITY_MANAGER = "quality_manager"
    AUDITOR = "auditor"
    ADMIN = "admin"
    #: Purchasing, on the Business hub: InventoryHub's purchase requests, and nothing of the floor.
    BUYER = "buyer"


class Permission(enum.StrEnum):
    CREDENTIALS_READ_OWN = "credentials.read_own"
    PEOPLE_READ = "people.read"
    PEOPLE_WRITE = "people.write"
    RECORDS_READ = "records.read"
    RECORDS_WRITE = "records.write"
    CREDENTIALS_READ = "credentials.read"
    CREDENTIALS_ISSUE = "credentials.issue"
    CREDENTIALS_SUSPEND = "credentials.suspend"
    CREDENTIALS_REVOKE = "credentials.revoke"
    LOGINS_MANAGE = "logins.manage"
    STATIONS_MANAGE = "stations.manage"
    LEDGER_READ = "ledger.read"
    #: The work (clients, POs, travelers): read, enter and change, contract-review, release to stations.
    ORDERS_READ = "orders.read"
    ORDERS_WRITE = "orders.write"
    ORDERS_REVIEW = "orders.review"
    ORDERS_RELEASE = "orders.release"
    #: AuditCentral: job audit packets, reverse searches, C of C proofs (read only, for everyone's role).
    AUDIT_READ = "audit.read"
    #: MaintenanceHub: read the register and calendar; enter equipment, calibrations, surveys, orders;
    #: disposition a recall's impact review (the person is proved by their credential besides).
    MAINTENANCE_READ = "maintenance.read"
    MAINTENANCE_WRITE = "maintenance.write"
    MAINTENANCE_DISPOSITION = "maintenance.disposition"
    #: Purchasing (Business hub): read the purchase requests InventoryHub published there.
    PURCHASING_READ = "purchasing.read"


@cache
def role_permissions() -> Mapping[Role, frozenset[Permission]]:
    raw: dict[str, dict[Role, list[Permission]]] = load_yaml(
        DATA / "roles.yaml", dict[str, dict[Role, list[Permission]]]
    )
    table = {role: frozenset(perms) for role, perms in raw["roles"].items()}
    missing = set(Role) - set(table)
    if missing:
        raise ValueError(f"{DATA / 'roles.yaml'}: roles {sorted(missing)} have no permissions listed")
    return table


def allows(role: Role, permission: Permission) -> bool:
    return permission in role_permissions()[role]
