"""Every hub page renders its banner from the pages' own environment, with or without ComplianceCentral.

The banner (emergency revisions awaiting a countersignature) is filled by the compliance service,
but the page template calls ``contract_flags()`` on every page: a page rendered in a process that
never imported that service (an audit page test run alone, a hub running only some services) must
still render, and show what was flagged. Run in a fresh interpreter, so nothing another test
imported before decides the outcome.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from datetime import datetime, UTC
from smart.hub.web import auth
page = auth.TEMPLATES.get_template("access/login.html")
print("compliance imported:", "smart.hub.compliance.service" in sys.modules)
print("empty:", 'role="alert"' in page.render(page="Sign in", next="/"))
deadline = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
auth.show_contract_flags([auth.ContractFlag("penetrant", "abc123", False, deadline, "l3-1")])
print("flagged:", "emergency revision abc123 of penetrant" in page.render(page="Sign in", next="/"))
auth.show_contract_flags([])
print("cleared:", 'role="alert"' in page.render(page="Sign in", next="/"))
"""


def test_a_hub_page_renders_its_banner_without_the_compliance_service_imported() -> None:
    ran = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    assert ran.stdout.split("\n")[:4] == [
        "compliance imported: False",
        "empty: False",
        "flagged: True",
        "cleared: False",
    ], ran.stdout + ran.stderr


def test_a_revision_flagged_by_the_vault_and_by_businesss_copy_is_one_line_naming_the_approver() -> None:
    """``smart up`` runs every role in one process: the Vault's reading and Business's published copy
    flag the same revision; the banner shows it once, in the words that name its approver."""
    from datetime import UTC, datetime

    from smart.hub.web import auth

    deadline = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    published = auth.ContractFlag("penetrant", "abc123", True, deadline)
    other = auth.ContractFlag("heat-treat", "def456", False, deadline)
    read = auth.ContractFlag("penetrant", "abc123", False, deadline, "l3-1")
    try:
        auth.show_contract_flags([published, other], source="published")
        assert auth.contract_flags() == [published.line(), other.line()]
        assert "one person's approval alone" in published.line()
        auth.show_contract_flags([read])
        assert auth.contract_flags() == [read.line(), other.line()]
        assert "l3-1's approval alone" in read.line()
        auth.show_contract_flags([], source="published")
        assert auth.contract_flags() == [read.line()]
    finally:
        auth.show_contract_flags([])
        auth.show_contract_flags([], source="published")
    assert auth.contract_flags() == []
