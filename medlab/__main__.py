"""``python -m medlab``: runs the command line, :mod:`medlab.harness.cli` (run as a program,
not imported: the library imports no harness module)."""

import runpy

runpy.run_module("medlab.harness.cli", run_name="__main__", alter_sys=True)
