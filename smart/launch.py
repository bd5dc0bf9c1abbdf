"""The ``smart`` command's entry point: ``smart module run`` starts lean, everything else loads the CLI.

A station runs one process per module (its DaemonSet pods) on a Pi's small memory, so ``smart
module run`` must not import the whole command (every group, the web apps, OpenCV, the hub's
database driver): it goes straight to :mod:`smart.node.module_run`, which loads the module and
its ports only. Every other command is the typer app of :mod:`smart.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:3] == ["module", "run"] and "--help" not in sys.argv:
        from smart.node.module_run import main as module_main

        sys.exit(module_main(sys.argv[3:]))
    from smart.cli import main as cli_main

    cli_main()
