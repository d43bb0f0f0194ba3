"""Trusted half of spec-verifier: the rejection-sampling rule, row by row, in float64.

For draft token x at position i: accept when u_i * q_i(x) < p_i(x) (that is, u_i < min(1,
p_i(x) / q_i(x))). At the first rejection emit a token from max(0, p_i - q_i) normalised (p_i
itself if that is all zero); after k acceptances emit the bonus token from p_k. Tokens are
drawn by inverse CDF with u_k: the first index whose cumulative mass exceeds u_k * total.
A row whose uniform lies within float32 rounding of a decision is marked ambiguous (not judged).
"""

import numpy as np

# Relative closeness to a decision below which float32 arithmetic may legitimately decide
# either way.
AMBIGUOUS = 1e-5
# The same for the inverse CDF's cumulative sums (float32 sums over 32,000 tokens drift ~1e-7).
CDF_AMBIGUOUS = 2e-6


def _inverse_cdf(weights, u):
    cdf = np.cumsum(weights)
    target = u * cdf[-1]
    index = min(int(np.searchsorted(cdf, target, side="right")), len(weights) - 1)
    edges = cdf[max(index - 1, 0) : index + 1]  # the cumulative sums that bracket the draw
    near = np.abs(edges - target) <= CDF_AMBIGUOUS * cdf[-1]
    return index, bool(near.any())


def verify_expected(draft_tokens, draft_probs, target_probs, uniforms):
    """(tokens [B][k + 1] with -1 padding, num_accepted [B], ambiguous [B]) as lists."""
    d = draft_tokens.numpy()
    q = draft_probs.double().numpy()
    p = target_probs.double().numpy()
    u = uniforms.double().numpy()
    rows, k = d.shape
    tokens, accepted, ambiguous = [], [], []
    for b in range(rows):
        unsure, n = False, 0
        while n < k:
            x = d[b, n]
            px, qx = p[b, n, x], q[b, n, x]
            unsure |= abs(u[b, n] * qx - px) <= AMBIGUOUS * max(qx, px)
            if not u[b, n] * qx < px:
                break
            n += 1
        if n < k:
            weights = np.maximum(p[b, n] - q[b, n], 0.0)
            if weights.sum() <= 0:
                weights = p[b, n]
        else:
            weights = p[b, k]
        extra, near = _inverse_cdf(weights, u[b, k])
        row = [int(t) for t in d[b, :n]] + [extra] + [-1] * (k - n)
        tokens.append(row)
        accepted.append(n)
        ambiguous.append(unsure or near)
    return tokens, accepted, ambiguous
