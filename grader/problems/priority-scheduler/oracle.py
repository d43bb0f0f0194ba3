"""Trusted half of priority-scheduler: the workload generator, the trace replay and the expected
tokens are the harness's own (grader/harnesses/engine_scheduler.py, engine_run.py), driven by
the tests in problem.yaml; nothing problem-specific is needed here."""
