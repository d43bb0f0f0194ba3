"""Trusted half of tp-mlp: the single-device Llama MLP in float64, on the same weights and
input the ranks were given: down(silu(gate(x)) * up(x)) with nn.Linear's layout (y = x W^T)."""

import numpy as np


def expected(x, gate, up, down):
    """[tokens, hidden] float64 for x [tokens, hidden], gate and up [I, hidden], down [hidden, I]."""
    x, gate, up, down = (np.asarray(a, dtype=np.float64) for a in (x, gate, up, down))
    g = x @ gate.T
    return ((g / (1.0 + np.exp(-g))) * (x @ up.T)) @ down.T
