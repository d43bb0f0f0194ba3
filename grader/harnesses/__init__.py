"""Harness kinds, registered by name (``registry.py``): one file per kind in this package.

Importing the package imports every kind, so ``harness_get`` knows them all. Nothing here
imports Django: the in-sandbox runner imports this package.
"""

from __future__ import annotations

from grader.harnesses import (  # noqa: F401  (each kind registers itself)
    engine_allocator,
    engine_grammar,
    engine_prefix_cache,
    engine_sampler,
    engine_scheduler,
    engine_slo_scheduler,
    engine_verifier,
    function,
    kernel,
    tensor_parallel,
)
from grader.harnesses.registry import HARNESSES, harness_get, register

__all__ = ["HARNESSES", "harness_get", "register"]
