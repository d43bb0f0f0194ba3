import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a 2-D float32 or float64 array; must not modify x."""
    raise NotImplementedError
