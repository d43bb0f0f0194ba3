"""What the claim readers' experiments share: the split that holds a tenth of the rubric points
back, and the table of how a reader scores each kind of held-back pair."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import numpy as np


def split(rows: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """(train, held back): a tenth of the rubric points (seed 17) held back whole, so a point's
    pairs are all on one side."""
    groups = sorted({r["group"] for r in rows})
    random.Random(17).shuffle(groups)
    held = set(groups[: len(groups) // 10])
    return [r for r in rows if r["group"] not in held], [r for r in rows if r["group"] in held]


def held_back_table(
    by_source: Mapping[tuple[int, str], Sequence[float]],
    key: Callable[[int, str], str] = lambda label, source: f"{label}:{source}",
) -> dict[str, dict]:
    """Per (label, kind of pair), the share the reader labels right at 0.5 and its probability
    at the 10th, 50th and 90th percentile; printed, and returned by `key`."""
    print(
        f"\n{'label':<6}{'pairs of kind':<22}{'pairs':>7}{'right':>8}{'p10':>8}{'p50':>8}{'p90':>8}"
    )
    table = {}
    for (label, source), probs in sorted(by_source.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        p = np.array(probs)
        right = float(((p >= 0.5) == bool(label)).mean())
        q10, q50, q90 = (float(np.quantile(p, q)) for q in (0.1, 0.5, 0.9))
        print(f"{label:<6}{source:<22}{len(p):>7}{right:>8.1%}{q10:>8.3f}{q50:>8.3f}{q90:>8.3f}")
        table[key(label, source)] = {"label": label, "pairs": len(p), "right": round(right, 4),
                                     "p10": round(q10, 4), "p50": round(q50, 4),
                                     "p90": round(q90, 4)}  # fmt: skip
    return table
