"""Trusted half of radix-prefix-cache: the op scripts, the workloads, the model of the KV cache
that checks every answer and the engine runs are the harness's own
(grader/harnesses/engine_prefix_cache.py and engine_allocator.py), driven by the tests in
problem.yaml; nothing problem-specific is needed here."""
