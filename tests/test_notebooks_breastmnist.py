"""Every notebook in quick mode on the re-saved BreastMNIST copy (official name, unofficial file;
the official file without the shared folder). See tests/notebook_runs.py."""

from notebook_runs import notebook_run_test

test_notebook_runs_quick_and_reproduces = notebook_run_test("breastmnist")
