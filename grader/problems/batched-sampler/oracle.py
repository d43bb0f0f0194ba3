"""Trusted half of batched-sampler: each row's exact target distribution, in float64.

The rules of `engine.sampler.Sampler`, applied one row at a time in transformers' order:
temperature, top-k (every token whose logit is >= the k-th largest stays, ties included),
top-p (sorted ascending, drop tokens whose cumulative probability is <= 1 - top_p, the most
likely always stays), min-p (drop tokens below min_p times the top probability), softmax.
Temperature 0 is greedy: all the mass on the first argmax.
"""

import torch


def target_probs(logits, settings):
    """[rows, vocab] float64 target distributions for float64 `logits` and per-row settings."""
    rows, vocab = logits.shape
    out = torch.zeros(rows, vocab, dtype=torch.float64)
    for row, s in enumerate(settings):
        x = logits[row].clone()
        if s["temperature"] == 0:
            out[row, int(x.argmax())] = 1.0
            continue
        x = x / s["temperature"]
        if 0 < s["top_k"] < vocab:
            kth = x.sort(descending=True).values[s["top_k"] - 1]
            x[x < kth] = float("-inf")
        if s["top_p"] < 1:
            ascending, order = x.sort()
            cumulative = ascending.softmax(0).cumsum(0)
            drop = cumulative <= 1 - s["top_p"]
            drop[-1] = False
            x[order[drop]] = float("-inf")
        if s["min_p"] > 0:
            p = x.softmax(0)
            x[p < s["min_p"] * p.max()] = float("-inf")
        out[row] = x.softmax(0)
    return out
