"""Trusted half of batched-sampler: each row's exact target distribution in float64, and the
token each row's uniform selects.

The rules of `engine.sampler.Sampler`, in transformers' order: temperature, top-k (every token
whose logit is >= the k-th largest stays, ties included), top-p (sorted ascending, drop tokens
whose cumulative probability is <= 1 - top_p, the most likely always stays), min-p (drop tokens
below min_p times the top probability), softmax. Temperature 0 is greedy: all the mass on the
first argmax. A sampled row takes the first token, in token-id order, whose cumulative
probability exceeds its uniform times the row's total.

Float32 arithmetic may decide a near-threshold case either way, so a row is not judged on
what rounding may change: a filter decision within the margins below (``unsure``), or a
uniform within ``CDF_MARGIN`` of a bin edge. Honest float32 samplers measured at most 1.2e-7
of cumulative error and 7e-6 relative error of one probability (49,152 tokens, temperatures
0.3-1.6, the cumulative summed in float32 or float64); the margins are ten times that or more.
"""

import numpy as np

# A draw this close to a bin edge of the exact cumulative distribution (relative to the
# row's total) may select either neighbour.
CDF_MARGIN = 2e-6
# A token whose ascending cumulative probability is this close to 1 - top_p may stay or go.
TOP_P_MARGIN = 1e-6
# A token whose probability is this close to min_p * max probability (relative to the max).
MIN_P_MARGIN = 1e-5
# Two logits this close (relative), one at the k-th largest, may tie once divided in float32.
TOP_K_MARGIN = 1e-6


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def target_probs(logits, settings):
    """(probs [rows, vocab] float64, unsure [rows] bool) for `logits` [rows, vocab] and
    `settings` [rows, 4] (temperature, top_k, top_p, min_p per row, the values the sampler
    sees). `unsure` marks rows where a filter decision lies within float32 rounding."""
    given = np.asarray(logits)  # float32 sorts twice as fast, in the same order
    logits = given.astype(np.float64)
    temperature, top_k, top_p, min_p = np.asarray(settings, dtype=np.float64).T
    rows, vocab = logits.shape
    greedy = temperature == 0
    divisor = np.where(greedy, 1.0, temperature)[:, None]
    x = logits / divisor
    unsure = np.zeros(rows, dtype=bool)

    # top-k and top-p need the sorted logits (dividing by T > 0 keeps their order): only the
    # rows that use them are sorted
    k = np.where((top_k > 0) & (top_k < vocab), top_k, vocab).astype(np.int64)
    rows_sorted = np.flatnonzero(~greedy & ((k < vocab) | (top_p < 1)))
    descending = -np.sort(-given[rows_sorted], axis=-1) / divisor[rows_sorted]
    k = k[rows_sorted]
    at = np.arange(len(rows_sorted))
    kth = np.where(k < vocab, descending[at, k - 1], -np.inf)
    below = descending[at, np.minimum(k, vocab - 1)]
    with np.errstate(invalid="ignore"):  # -inf - -inf: not close, as no NaN is
        unsure[rows_sorted] |= (below < kth) & (kth - below <= TOP_K_MARGIN * np.abs(kth))
    x[rows_sorted] = np.where(x[rows_sorted] < kth[:, None], -np.inf, x[rows_sorted])
    descending = np.where(descending < kth[:, None], -np.inf, descending)

    # top-p: a token's ascending cumulative probability is its own mass plus the mass below
    # it; the tokens where it is <= 1 - top_p (a suffix of the sorted ones) go, never the first
    nucleus = top_p[rows_sorted] < 1
    rows_top_p, descending = rows_sorted[nucleus], descending[nucleus]
    ascending_cumulative = np.cumsum(_softmax(descending)[:, ::-1], axis=-1)[:, ::-1]
    limit = (1 - top_p[rows_top_p])[:, None]
    drop = ascending_cumulative <= limit
    drop[:, 0] = False
    finite = np.isfinite(descending)
    near = finite & (np.abs(ascending_cumulative - limit) <= TOP_P_MARGIN)
    near[:, 0] = False
    # which of several tokens tied at the boundary stay is unspecified
    straddles = (descending[:, 1:] == descending[:, :-1]) & (drop[:, 1:] != drop[:, :-1])
    unsure[rows_top_p] |= near.any(axis=-1) | (straddles & finite[:, 1:]).any(axis=-1)
    last_kept = descending[np.arange(len(rows_top_p)), (~drop).sum(axis=-1) - 1]
    x[rows_top_p] = np.where(x[rows_top_p] < last_kept[:, None], -np.inf, x[rows_top_p])

    # min-p, relative to the most likely token left
    rows_min_p = np.flatnonzero(~greedy & (min_p > 0))
    p = _softmax(x[rows_min_p])
    top = p.max(axis=-1, keepdims=True)
    cut = min_p[rows_min_p, None] * top
    near = np.isfinite(x[rows_min_p]) & (np.abs(p - cut) <= MIN_P_MARGIN * top)
    unsure[rows_min_p] |= near.any(axis=-1)
    x[rows_min_p] = np.where(p < cut, -np.inf, x[rows_min_p])

    probs = _softmax(x)
    probs[greedy] = 0.0
    probs[greedy, np.argmax(logits[greedy], axis=-1)] = 1.0
    return probs, unsure & ~greedy


def sample_expected(logits, settings, uniforms):
    """(tokens [rows] int64, judged [rows] bool): the token each row's uniform selects, and
    whether rounding could not change it (greedy rows: the first argmax, always judged)."""
    probs, unsure = target_probs(logits, settings)
    rows, vocab = probs.shape
    index = np.arange(rows)
    cdf = np.cumsum(probs, axis=-1)
    total = cdf[:, -1]
    draw = np.asarray(uniforms, dtype=np.float64) * total
    tokens = np.minimum((cdf <= draw[:, None]).sum(axis=-1), vocab - 1)
    lower = np.where(tokens > 0, cdf[index, np.maximum(tokens - 1, 0)], 0.0)
    upper = cdf[index, tokens]
    near = np.minimum(draw - lower, upper - draw) <= CDF_MARGIN * total
    greedy = np.asarray(settings, dtype=np.float64)[:, 0] == 0
    tokens = np.where(greedy, np.argmax(np.asarray(logits), axis=-1), tokens)
    return tokens.astype(np.int64), greedy | ~(unsure | near)
