"""Trusted half of cpu-softmax: input generation and the float64 reference (never sent to the sandbox)."""

import numpy as np


def generate(case, rng):
    """A fresh input for one call of ``case``, from the call's own random generator."""
    rows, cols = case["shape"]
    dtype = np.dtype(case["dtype"])
    fill = case["fill"]
    if fill == "normal":
        x = rng.standard_normal((rows, cols)) * case.get("scale", 1.0)
    elif fill == "uniform":
        x = rng.uniform(-case["scale"], case["scale"], (rows, cols))
    elif fill == "neg_inf_one_finite":
        x = np.full((rows, cols), -np.inf)
        x[np.arange(rows), rng.integers(0, cols, rows)] = rng.uniform(-50, 50, rows)
    else:
        raise ValueError(f"unknown fill {fill!r}")
    return x.astype(dtype)


def expected(x):
    """Softmax over the last axis in float64, stable: exp(x - max) / sum."""
    x64 = np.asarray(x, dtype=np.float64)
    shifted = x64 - x64.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
