"""Engine-lab selectors: a user's experiments, and one experiment's side-by-side summary."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from grader.selectors import workers_serving
from lab.experiment import MODES
from lab.models import LabRun
from lab.services import LAB_QUEUE

# How many past experiments the lab page lists.
RECENT_RUNS = 10


def lab_queue_served() -> bool:
    """Whether a live worker consumes the lab's queue: an experiment queued now would run."""
    return bool(workers_serving(LAB_QUEUE))


def labruns_of(user) -> QuerySet[LabRun]:
    return LabRun.objects.filter(user=user)[:RECENT_RUNS]


def labrun_summary(run: LabRun) -> list[dict[str, Any]]:
    """Per mode, the figures the comparison table shows (empty until the run is done)."""
    rows = []
    results = run.results.get("modes") or {}
    # In MODES' order, not the stored mapping's: PostgreSQL's jsonb does not keep key order.
    for mode in [mode for mode in MODES if mode in results]:
        result = results[mode]
        metrics = result["metrics"]
        computed = result["computed_tokens"] or 1
        rows.append(
            {
                "mode": mode,
                "output_tokens_per_s": metrics["output_tokens_per_s"],
                "requests_per_s": metrics["requests_per_s"],
                "wall_s": metrics["wall_s"],
                "steps": metrics["steps"],
                "ttft_p50_ms": metrics["ttft_ms"]["p50"],
                "ttft_p90_ms": metrics["ttft_ms"]["p90"],
                "tpot_p50_ms": metrics["tpot_ms"]["p50"],
                "kv_mean_pct": 100 * metrics["kv_utilization"]["mean"],
                "kv_peak_pct": 100 * metrics["kv_utilization"]["peak"],
                "preemptions": metrics["preemptions"],
                "padding_pct": 100 * result["padding_tokens"] / computed,
                "useful_tokens_per_step": (computed - result["padding_tokens"])
                / max(metrics["steps"], 1),
            }
        )
    return rows
