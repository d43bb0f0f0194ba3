import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Wrong: normalises over the first axis (columns) instead of the last (rows)."""
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)
