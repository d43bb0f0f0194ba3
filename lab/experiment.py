"""What an engine-lab experiment may be asked to do: the settings a person chooses and their
bounds. No engine import here, so the web pages (and every manage.py command, which loads them)
do not pay for torch; ``lab.runner`` runs the settings on a worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MODES = ("continuous", "static")
POLICY_NAMES = ("fcfs", "priority")
BLOCK_SIZES = (4, 8, 16, 32)
# Bounds that keep one experiment to a few seconds of one CPU core on a shared worker.
MAX_REQUESTS = 32
MAX_PROMPT_TOKENS = 64
MAX_OUTPUT_TOKENS = 48
MAX_KV_BLOCKS = 256
MAX_BATCH = 16
MAX_RATE_PER_S = 1000.0


@dataclass(frozen=True)
class LabSettings:
    """What a person chooses; validated on construction (ValueError names the field)."""

    modes: tuple[str, ...] = MODES
    policy: str = "fcfs"
    block_size: int = 8
    num_kv_blocks: int = 64
    max_num_seqs: int = 8
    arrival_rate_per_s: float = 40.0
    requests: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.modes or any(mode not in MODES for mode in self.modes):
            raise ValueError(f"modes must be some of {MODES}")
        if self.policy not in POLICY_NAMES:
            raise ValueError(f"policy must be one of {sorted(POLICY_NAMES)}")
        if self.block_size not in BLOCK_SIZES:
            raise ValueError(f"block_size must be one of {BLOCK_SIZES}")
        checks = (
            ("num_kv_blocks", self.num_kv_blocks, 4, MAX_KV_BLOCKS),
            ("max_num_seqs", self.max_num_seqs, 1, MAX_BATCH),
            ("requests", self.requests, 1, MAX_REQUESTS),
            ("arrival_rate_per_s", self.arrival_rate_per_s, 0, MAX_RATE_PER_S),
        )
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")
        longest = (MAX_PROMPT_TOKENS + MAX_OUTPUT_TOKENS + self.block_size - 1) // self.block_size
        if self.num_kv_blocks < longest:
            raise ValueError(
                f"num_kv_blocks must be at least {longest}: the longest request needs that many "
                f"blocks of {self.block_size} tokens"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabSettings:
        return cls(**(data | {"modes": tuple(data.get("modes", MODES))}))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"modes": list(self.modes)}
