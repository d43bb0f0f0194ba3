"""One request's state as it moves through the engine: tokens, KV blocks, progress, timings."""

from __future__ import annotations

import enum
import itertools
import random
from dataclasses import dataclass, field

from engine.config import SamplingParams


class Status(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


_ids = itertools.count()


@dataclass(eq=False)
class Sequence:
    """A request. `token_ids` holds prompt then output; the KV cache holds the first
    `num_computed_tokens` of them, in the blocks listed by `block_table`.

    The engine's one scheduling rule: each step a running sequence may compute up to
    `num_tokens - num_computed_tokens` new tokens (a whole or chunked prefill, one decode token,
    the tail of a prompt after a prefix hit, or 1 + k tokens with k speculative draft tokens).
    """

    prompt_token_ids: list[int]
    params: SamplingParams = field(default_factory=SamplingParams)
    priority: int = 0
    arrival_time: float = 0.0
    request_id: str = ""
    seq_id: int = field(default_factory=lambda: next(_ids))
    status: Status = Status.WAITING
    token_ids: list[int] = field(default_factory=list)
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    spec_token_ids: list[int] = field(default_factory=list)
    block_hashes: list[tuple[int, tuple]] = field(default_factory=list)
    num_cached_blocks: int = 0
    num_preemptions: int = 0
    pad_to_tokens: int = 0
    token_times: list[float] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self.prompt_token_ids = list(self.prompt_token_ids)
        if not self.token_ids:
            self.token_ids = list(self.prompt_token_ids)
        if not self.request_id:
            self.request_id = str(self.seq_id)
        seed = self.params.seed if self.params.seed is not None else random.getrandbits(63)
        self.rng = random.Random(seed)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        """Known tokens: prompt, output so far, and any speculative draft tokens."""
        return len(self.token_ids) + len(self.spec_token_ids)

    @property
    def all_token_ids(self) -> list[int]:
        return self.token_ids + self.spec_token_ids

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def is_finished(self) -> bool:
        return self.status is Status.FINISHED

    def __repr__(self) -> str:
        return (
            f"Sequence(id={self.request_id}, {self.status.value}, tokens={self.num_tokens}, "
            f"computed={self.num_computed_tokens}, blocks={self.block_table})"
        )
