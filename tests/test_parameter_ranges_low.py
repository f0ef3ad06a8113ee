"""Every notebook at the low end of every documented parameter range. See tests/parameter_runs.py."""

from parameter_runs import parameter_run_test

test_notebook_runs_at_the_low_ends = parameter_run_test(0)
