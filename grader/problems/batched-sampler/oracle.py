"""Trusted half of batched-sampler: each row's exact target distribution in float64, and the
token each row's uniform selects.

The rules of `engine.sampler.Sampler`, in transformers' order: temperature, top-k (every token
whose logit is >= the k-th largest stays, ties included), top-p (sorted ascending, drop tokens
whose cumulative probability is <= 1 - top_p, the most likely always stays), min-p (drop tokens
below min_p times the top probability), softmax. Temperature 0 is greedy: all the mass on the
first argmax. A sampled row takes the first token, in token-id order, whose cumulative
probability exceeds its uniform times the row's total.

Every filter keeps the tokens whose tempered logit is at least some threshold, so a row keeps
its `count` largest (ties all in or all out). Float32 arithmetic may put a threshold on either
side of a token whose decision lies within rounding of it (the margins below): such a row may
keep anywhere from `low` to `high` tokens, and its token must be the one its uniform selects
under one of those counts. Not judged at all: a uniform within `CDF_MARGIN` of a bin edge, and
a row whose top-p boundary falls inside a group of tied logits (which of them stay is
unspecified). Honest float32 samplers measured at most 1.2e-7 of cumulative error in token
order, 5.4e-6 in the top-p cumulative (one minus a descending float32 cumulative sum, as
engine/topk_topp_sampler.py computes it) and 3e-6 relative in a probability (49,152 tokens,
temperatures 0.3-1.6); the margins are ten times that.
"""

import numpy as np

# A draw this close to a bin edge of the exact cumulative distribution (relative to the
# row's total) may select either neighbour.
CDF_MARGIN = 2e-6
# A token whose ascending cumulative probability is this close to 1 - top_p may stay or go.
TOP_P_MARGIN = 5e-5
# A token whose probability is this close to min_p * max probability (relative) may stay or go.
MIN_P_MARGIN = 5e-5
# Two logits this close (relative), one at the k-th largest, may tie once divided in float32.
TOP_K_MARGIN = 1e-6


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _at_least(descending, threshold):
    """Per row, how many of the descending values are >= the row's threshold."""
    return (descending >= threshold[:, None]).sum(axis=-1)


def kept_counts(logits, settings):
    """The filters' decisions, per row: (x, descending, count, low, high, unsure).

    `x` [rows, vocab] are the tempered logits (float64), `descending` the same sorted; a row
    keeps its `count` largest, or any number from `low` to `high` where float32 rounding may
    move a threshold; `unsure` marks a top-p boundary inside a group of ties. `settings` is
    [rows, 4]: temperature, top_k, top_p, min_p per row, the values the sampler sees.
    """
    given = np.asarray(logits)  # float32 sorts twice as fast, in the same order
    temperature, top_k, top_p, min_p = np.asarray(settings, dtype=np.float64).T
    rows, vocab = given.shape
    at = np.arange(rows)
    greedy = temperature == 0
    divisor = np.where(greedy, 1.0, temperature)[:, None]
    x = given.astype(np.float64) / divisor
    descending = -np.sort(-given, axis=-1) / divisor
    finite = np.isfinite(descending).sum(axis=-1)
    counts = [np.stack([finite] * 3)]  # (count, low, high) per filter; none keeps every token

    k = np.where((top_k > 0) & (top_k < vocab), top_k, vocab).astype(np.int64)
    kth = np.where(k < vocab, descending[at, k - 1], -np.inf)
    near = kth - TOP_K_MARGIN * np.abs(kth)
    counts.append(np.stack([_at_least(descending, kth)] * 2 + [_at_least(descending, near)]))

    # top-p over what top-k left: a token's ascending cumulative probability is its own mass
    # plus the mass below it; the first tokens whose cumulative is > 1 - top_p stay
    kept = np.where(descending >= kth[:, None], descending, -np.inf)
    ascending_cumulative = np.cumsum(_softmax(kept)[:, ::-1], axis=-1)[:, ::-1]
    limit = np.where(top_p < 1, 1 - top_p, -1.0)[:, None]
    top_p_counts = [
        np.maximum((ascending_cumulative > limit + margin).sum(axis=-1), 1)
        for margin in (0.0, TOP_P_MARGIN, -TOP_P_MARGIN)
    ]
    counts.append(np.stack(top_p_counts))
    boundary = np.minimum(top_p_counts[0], vocab - 1)
    unsure = (top_p < 1) & (top_p_counts[0] < finite)
    unsure &= descending[at, boundary - 1] == descending[at, boundary]

    # min-p: the ratio to the top probability, whichever tokens top-k and top-p left
    ratio = np.exp(descending - descending[:, :1])
    counts.append(
        np.stack(
            [
                np.where(min_p > 0, _at_least(ratio, min_p * scale), vocab)
                for scale in (1.0, 1 + MIN_P_MARGIN, 1 - MIN_P_MARGIN)
            ]
        )
    )
    count, low, high = (np.where(greedy, 1, c) for c in np.stack(counts).min(axis=0))
    return x, descending, count, low, high, unsure & ~greedy


def _probs_keeping(x, descending, count):
    """Per row, the softmax over its `count` largest tempered logits, in token order."""
    threshold = descending[np.arange(len(count)), np.maximum(count, 1) - 1]
    return _softmax(np.where(x >= threshold[:, None], x, -np.inf))


def target_probs(logits, settings):
    """(probs [rows, vocab] float64, unsure [rows] bool): the exact distributions, and which
    rows a float32 sampler may filter otherwise (a decision within rounding, or tied)."""
    x, descending, count, low, high, unsure = kept_counts(logits, settings)
    greedy = np.asarray(settings, dtype=np.float64)[:, 0] == 0
    probs = _probs_keeping(x, descending, count)
    probs[greedy] = 0.0
    probs[greedy, np.argmax(np.asarray(logits)[greedy], axis=-1)] = 1.0
    return probs, unsure | (low != high)


def _draw(probs, uniforms):
    """(token, near an edge) per row by inverse CDF in token order."""
    rows, vocab = probs.shape
    at = np.arange(rows)
    cdf = np.cumsum(probs, axis=-1)
    total = cdf[:, -1]
    draw = uniforms * total
    tokens = np.minimum((cdf <= draw[:, None]).sum(axis=-1), vocab - 1)
    lower = np.where(tokens > 0, cdf[at, np.maximum(tokens - 1, 0)], 0.0)
    near = np.minimum(draw - lower, cdf[at, tokens] - draw) <= CDF_MARGIN * total
    return tokens, near


def sample_expected(logits, settings, uniforms):
    """(tokens [rows] int64, allowed [rows, n] int64, judged [rows] bool).

    `tokens`: what each row's uniform selects (greedy rows: the first argmax); `allowed`: the
    tokens it may select under any number of kept tokens that float32 rounding allows (the
    first column is `tokens`, repeated where there are fewer); `judged`: whether the row is
    judged at all (not within CDF_MARGIN of a bin edge, no top-p boundary inside a group of
    tied logits).
    """
    x, descending, count, low, high, unsure = kept_counts(logits, settings)
    uniforms = np.asarray(uniforms, dtype=np.float64)
    greedy = np.asarray(settings, dtype=np.float64)[:, 0] == 0
    tokens, near = _draw(_probs_keeping(x, descending, count), uniforms)
    tokens = np.where(greedy, np.argmax(np.asarray(logits), axis=-1), tokens)
    # the rows whose count rounding may move: their token under each count it may take
    moved = np.flatnonzero((high > low) & ~greedy)
    width = int((high - low)[moved].max(initial=0)) + 1
    allowed = np.repeat(tokens[:, None], width + 1, axis=1)
    for extra in range(width):
        other = np.minimum(low[moved] + extra, high[moved])
        probs = _probs_keeping(x[moved], descending[moved], other)
        allowed[moved, extra + 1] = _draw(probs, uniforms[moved])[0]
    return tokens.astype(np.int64), allowed.astype(np.int64), greedy | ~(near | unsure)
