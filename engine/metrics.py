"""Run metrics: throughput, latency percentiles (TTFT, TPOT, ITL), KV use, preemptions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 (NaN-free: zeros for an empty list)."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    p50, p90, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}


@dataclass
class RunMetrics:
    requests: int
    output_tokens: int
    wall_s: float
    output_tokens_per_s: float
    requests_per_s: float
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    itl_ms: dict[str, float]
    kv_utilization: dict[str, float]
    preemptions: int
    steps: int

    def as_dict(self) -> dict:
        return asdict(self)


def compute_metrics(
    outputs, wall_s: float, kv_used_per_step: list[int], num_blocks: int, preemptions: int
) -> RunMetrics:
    """Metrics over finished `RequestOutput`s (timings on the engine's clock, in seconds).

    Output tokens are the requested ones (`len(output_token_ids)`), so padding in static mode
    never counts. TTFT runs from arrival to the first token; TPOT is the mean gap after it per
    request; ITL pools every gap of every request.
    """
    ttft, tpot, itl = [], [], []
    for out in outputs:
        times = out.token_times
        if not times:
            continue
        ttft.append((times[0] - out.arrival_time) * 1e3)
        gaps = np.diff(times) * 1e3
        if len(gaps):
            tpot.append(float(gaps.mean()))
            itl.extend(gaps.tolist())
    output_tokens = sum(len(out.output_token_ids) for out in outputs)
    used = np.asarray(kv_used_per_step or [0], dtype=np.float64) / max(num_blocks, 1)
    return RunMetrics(
        requests=len(outputs),
        output_tokens=output_tokens,
        wall_s=wall_s,
        output_tokens_per_s=output_tokens / wall_s,
        requests_per_s=len(outputs) / wall_s,
        ttft_ms=percentiles(ttft),
        tpot_ms=percentiles(tpot),
        itl_ms=percentiles(itl),
        kv_utilization={"mean": float(used.mean()), "peak": float(used.max())},
        preemptions=preemptions,
        steps=len(kv_used_per_step),
    )
