"""Trusted half of grammar-sampler: the token each row's uniform selects among the tokens its
grammar state allows, in float64.

A greedy row (temperature 0) takes the first argmax of the logits among the allowed tokens.
Any other row weighs each allowed token by exp(logit / temperature) (forbidden tokens 0) and
takes the first token, in token-id order, whose cumulative weight exceeds its uniform times
the total: the unconstrained softmax restricted to the allowed tokens and renormalised.
A uniform within `CDF_MARGIN` of the total from a bin edge is not judged: float32 rounding may
put it on either side (honest float32 samplers are ten times inside it, as batched-sampler's).
"""

import numpy as np

# A draw this close to a bin edge of the exact cumulative distribution (relative to the
# row's total) may select either neighbour.
CDF_MARGIN = 2e-6


def sample_expected(logits, allowed, temperature, uniforms):
    """(want [B] int64, judged [B] bool) for logits [B, V], allowed [B, V] bool, temperature
    [B] and uniforms [B]."""
    x = np.where(allowed, np.asarray(logits, dtype=np.float64), -np.inf)
    greedy = x.argmax(axis=1)
    t = np.where(temperature > 0, temperature, 1.0)[:, None]
    z = x / t
    weights = np.where(allowed, np.exp(z - z.max(axis=1, keepdims=True)), 0.0)
    cdf = weights.cumsum(axis=1)
    total = cdf[:, -1:]
    target = uniforms[:, None] * total
    sampled = np.minimum((cdf <= target).sum(axis=1), x.shape[1] - 1)
    edge = np.abs(np.where(allowed, cdf, np.inf) - target).min(axis=1)
    judged = (temperature == 0) | (edge > CDF_MARGIN * total[:, 0])
    want = np.where(temperature == 0, greedy, sampled)
    return want.astype(np.int64), judged
