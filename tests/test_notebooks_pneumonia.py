"""Every notebook in quick mode on the balanced PneumoniaMNIST subset (a registered custom
dataset; the official PneumoniaMNIST without the shared folder). See tests/notebook_runs.py."""

from notebook_runs import notebook_run_test

test_notebook_runs_quick_and_reproduces = notebook_run_test("pneumoniamnist_balanced_subset")
