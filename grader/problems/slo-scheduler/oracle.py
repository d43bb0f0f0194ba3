"""Trusted half of slo-scheduler: the workload generator, the trace replay, the SLO figures,
the FCFS baseline and the expected tokens are the harness's own
(grader/harnesses/engine_slo_scheduler.py, engine_scheduler.py, engine_run.py), driven by the
tests in problem.yaml; nothing problem-specific is needed here."""
