"""Seeded workloads: which prompts arrive when, with what output length and priority."""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.config import SamplingParams

# nano-vllm's bench.py draws exactly these totals from random.seed(0); we assert them.
OFFLINE_MIXED_PROMPT_TOKENS = 142_827
OFFLINE_MIXED_OUTPUT_TOKENS = 133_966


@dataclass(frozen=True)
class Request:
    """One request of a workload: it arrives `arrival_s` after the start (in steps on
    `engine.driver.drive`'s step clock); an empty `request_id` lets the engine number it."""

    prompt_token_ids: list[int]
    params: SamplingParams
    arrival_s: float = 0.0
    priority: int = 0
    request_id: str = ""


def _scaled(length: int, scale: float) -> int:
    return max(1, round(length * scale))


def offline_mixed(
    requests: int = 256, seed: int = 0, scale: float = 1.0, temperature: float = 0.6
) -> list[Request]:
    """nano-vllm's bench.py workload, drawn in its order (all 256, then the first `requests`).

    `scale` shrinks prompt and output lengths for CPU runs; at scale 1 and seed 0 the totals
    are asserted equal to nano-vllm's.
    """
    rng = random.Random(seed)
    prompts = [[rng.randint(0, 10000) for _ in range(rng.randint(100, 1024))] for _ in range(256)]
    outputs = [rng.randint(100, 1024) for _ in range(256)]
    if seed == 0:
        assert sum(map(len, prompts)) == OFFLINE_MIXED_PROMPT_TOKENS
        assert sum(outputs) == OFFLINE_MIXED_OUTPUT_TOKENS
    return [
        Request(
            prompt[: _scaled(len(prompt), scale)],
            SamplingParams(
                temperature=temperature,
                ignore_eos=True,
                max_tokens=_scaled(out, scale),
                seed=seed * 1000 + i,
            ),
        )
        for i, (prompt, out) in enumerate(zip(prompts[:requests], outputs[:requests], strict=True))
    ]


def online_poisson(
    requests: int = 256, seed: int = 0, scale: float = 1.0, rate_per_s: float = 20.0
) -> list[Request]:
    """offline-mixed's requests arriving as a Poisson process at `rate_per_s`."""
    rng = random.Random(seed + 1)
    clock, out = 0.0, []
    for request in offline_mixed(requests, seed, scale):
        clock += rng.expovariate(rate_per_s)
        out.append(Request(request.prompt_token_ids, request.params, arrival_s=clock))
    return out


def shared_prefix(
    requests: int = 256, seed: int = 0, scale: float = 1.0, prefix_len: int = 512
) -> list[Request]:
    """Every prompt starts with one shared `prefix_len`-token system prompt, then its own tail."""
    rng = random.Random(seed)
    prefix = [rng.randint(0, 10000) for _ in range(_scaled(prefix_len, scale))]
    return [
        Request(
            prefix + [rng.randint(0, 10000) for _ in range(_scaled(rng.randint(16, 256), scale))],
            SamplingParams(
                temperature=0.6,
                ignore_eos=True,
                max_tokens=_scaled(rng.randint(64, 256), scale),
                seed=i,
            ),
        )
        for i in range(requests)
    ]


def priority_mix(
    requests: int = 256, seed: int = 0, scale: float = 1.0, burst_at_s: float = 0.5
) -> list[Request]:
    """A low-priority backlog (priority 1) at t=0, then a quarter of the requests as a
    high-priority burst (priority 0) at `burst_at_s`."""
    base = offline_mixed(requests, seed, scale)
    burst = len(base) // 4
    return [
        Request(
            r.prompt_token_ids,
            r.params,
            burst_at_s if i >= len(base) - burst else 0.0,
            0 if i >= len(base) - burst else 1,
        )
        for i, r in enumerate(base)
    ]


WORKLOADS = {
    "offline-mixed": offline_mixed,
    "online-poisson": online_poisson,
    "shared-prefix": shared_prefix,
    "priority-mix": priority_mix,
}


def make_workload(
    name: str, requests: int = 256, seed: int = 0, scale: float = 1.0
) -> list[Request]:
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose from {sorted(WORKLOADS)}")
    return WORKLOADS[name](requests=requests, seed=seed, scale=scale)
