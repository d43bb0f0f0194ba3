"""What the engine gives back: a finished request's `RequestOutput` and the per-step trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.sequence import Sequence


@dataclass
class RequestOutput:
    """A finished request: its tokens, why it stopped (or its error), and its timings."""

    request_id: str
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    finish_reason: str | None
    error: str | None = None
    arrival_time: float = 0.0
    token_times: list[float] = field(default_factory=list)
    num_preemptions: int = 0
    num_cached_tokens: int = 0
    priority: int = 0

    @classmethod
    def of(cls, seq: Sequence) -> RequestOutput:
        """An ended sequence's output, cut to `max_tokens` (static batching pads past it)."""
        keep = seq.params.max_tokens
        return cls(
            request_id=seq.request_id,
            prompt_token_ids=seq.prompt_token_ids,
            output_token_ids=seq.output_token_ids[:keep],
            finish_reason=seq.finish_reason,
            error=seq.error,
            arrival_time=seq.arrival_time,
            token_times=seq.token_times[:keep],
            num_preemptions=seq.num_preemptions,
            num_cached_tokens=seq.num_cached_tokens,
            priority=seq.priority,
        )


@dataclass
class StepRecord:
    """One line of the per-step trace."""

    step: int
    time_s: float
    duration_ms: float
    scheduled: list[tuple[str, int]]
    preempted: list[str]
    kv_blocks_used: int
