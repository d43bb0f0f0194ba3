"""Trusted half of spec-verifier: the rejection-sampling rule, for a whole batch, in float64.

For draft token x at position i: accept when u_i * q_i(x) < p_i(x) (that is, u_i < min(1,
p_i(x) / q_i(x))). At the first rejection emit a token from max(0, p_i - q_i) normalised (p_i
itself if that is all zero); after k acceptances emit the bonus token from p_k. Tokens are
drawn by inverse CDF with u_k: the first index, in token-id order, whose cumulative weight
exceeds u_k * total. A row is marked ambiguous (not judged) where float32 arithmetic may decide
either way: a uniform within ``AMBIGUOUS`` (relative) of p/q, or within ``CDF_AMBIGUOUS`` of the
total from a bin edge. A float32 verifier computing `u <= p / q` and summing in float32 differs
from these values by about 1e-7 at most; the margins are ten times that or more.
"""

import numpy as np

# Relative closeness to an acceptance decision below which float32 may decide either way.
AMBIGUOUS = 1e-5
# The same for the inverse CDF's cumulative sums, relative to the total weight.
CDF_AMBIGUOUS = 2e-6


def verify_expected(draft_tokens, draft_probs, target_probs, uniforms):
    """(tokens [B, k + 1] int64 with -1 padding, num_accepted [B], ambiguous [B] bool)."""
    d = np.asarray(draft_tokens, dtype=np.int64)
    q, p = np.asarray(draft_probs), np.asarray(target_probs)  # float64 only where read
    u = np.asarray(uniforms, dtype=np.float64)
    rows, k = d.shape
    vocab = p.shape[-1]
    index = np.arange(rows)
    p_x = np.take_along_axis(p[:, :k], d[..., None], axis=2)[..., 0].astype(np.float64)
    q_x = np.take_along_axis(q, d[..., None], axis=2)[..., 0].astype(np.float64)
    accepted = np.cumprod(u[:, :k] * q_x < p_x, axis=1).sum(axis=1)
    # the decisions taken: every accepted draft, and the rejected one
    decided = np.arange(k)[None, :] <= accepted[:, None]
    close = np.abs(u[:, :k] * q_x - p_x) <= AMBIGUOUS * np.maximum(q_x, p_x)
    ambiguous = (close & decided).any(axis=1)

    cdf = np.cumsum(emitted_weights(q, p, accepted), axis=1)
    total = cdf[:, -1]
    draw = u[:, k] * total
    extra = np.minimum((cdf <= draw[:, None]).sum(axis=1), vocab - 1)
    lower = np.where(extra > 0, cdf[index, np.maximum(extra - 1, 0)], 0.0)
    upper = cdf[index, extra]
    ambiguous |= np.minimum(draw - lower, upper - draw) <= CDF_AMBIGUOUS * total

    positions = np.arange(k + 1)[None, :]
    padded = np.concatenate([d, np.full((rows, 1), -1)], axis=1)
    tokens = np.where(positions < accepted[:, None], padded, -1)
    tokens[index, accepted] = extra
    return tokens, accepted, ambiguous


def emitted_weights(draft_probs, target_probs, num_accepted):
    """[B, V] float64: the weights each row's emitted token is drawn from, given how many
    drafts the row accepted (the residual at a rejection, else the bonus distribution)."""
    q, p = np.asarray(draft_probs), np.asarray(target_probs)
    n = np.asarray(num_accepted, dtype=np.int64)
    rows, k = q.shape[:2]
    index = np.arange(rows)
    weights = p[index, n].astype(np.float64)
    residual = np.maximum(weights - q[index, np.minimum(n, k - 1)], 0.0)
    use = (n < k) & (residual.sum(axis=1) > 0)
    return np.where(use[:, None], residual, weights)
