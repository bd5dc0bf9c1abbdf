"""The contracts pillar stands alone: compiling and signing bundles never imports the station modules."""

from __future__ import annotations

import subprocess
import sys


def test_contracts_pillar_imports_no_station_module_code() -> None:
    probe = (
        "import sys\n"
        "import smart.contracts.bundle, smart.contracts.catalog, smart.contracts.reconcile\n"
        "import smart.contracts.semantics, smart.contracts.engine\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('smart.modules'))\n"
        "print(','.join(loaded))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "", f"the contracts pillar imported {found.stdout.strip()}"


def test_catalog_reads_every_module_folder_manifest() -> None:
    from smart.contracts import catalog
    from smart.modules import framework

    assert framework.ModuleManifest is catalog.ModuleManifest
    assert set(catalog.MODULES) == {
        path.parent.name.replace("_", "-") for path in catalog.MODULES_DIR.glob("*/manifest.yaml")
    }
