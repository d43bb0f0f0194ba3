import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Wrong: exponentiates without subtracting the maximum, so exp(1e4) overflows to inf."""
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)
