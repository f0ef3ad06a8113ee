"""Every notebook at the high end of every documented parameter range. See tests/parameter_runs.py."""

from parameter_runs import parameter_run_test

test_notebook_runs_at_the_high_ends = parameter_run_test(1)
