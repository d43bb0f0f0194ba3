"""Trusted half of kv-allocator: the op-script generator, the model of the KV cache that checks
every op, and the engine run are the harness's own (grader/harnesses/engine_allocator.py),
driven by the tests in problem.yaml; nothing problem-specific is needed here."""
