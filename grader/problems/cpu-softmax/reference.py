import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """The naive reference: upcast to float64, subtract the row maximum, exponentiate, divide."""
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype)
