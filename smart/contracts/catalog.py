"""The station modules a contract may ask for, and which stations may run each.

Each module says what it is and where it may run in its own
``smart/modules/<name>/manifest.yaml`` (logistics only on a station labelled
for shipping); this is those manifests, read once, by module name. Semantics
checks a contract's modules against it, bundles keep only the modules a
station may run, and the reconcile core and the operator build one workload
per module from it. Adding a module means adding its folder, never editing
this file.

Only the framework's manifest reader is imported (it depends on the engine
and the facts, never on this module, the bundles or a driver), so there is
no import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping

from smart.modules import framework
from smart.modules.framework import ModuleManifest

__all__ = ["MODULES", "ModuleManifest"]

MODULES: Mapping[str, ModuleManifest] = framework.load_manifests()
