"""The ``prefix_cache`` kind: the candidate's prefix cache (a ``BlockAllocator``) serving
shared-prefix and multi-turn chat workloads under memory pressure in the trusted engine.

Everything of the ``allocator`` kind holds (``engine_allocator.py``): every answer is checked
on the trusted :class:`~grader.harnesses.engine_allocator.CacheModel` before the engine uses
it (valid tables, no block owned twice, no use after free, reference counts and the free
count, no leak, prefix hits that hold exactly the sequence's tokens), op scripts drive it one
op at a time, and the engine serves workloads with it behind an
:class:`~grader.harnesses.allocator_link.AllocatorProxy`. What this kind adds:

* two engine workloads, ``groups`` (a few system prompts, each shared by the requests of its
  group, arriving over time) and ``chat`` (conversations whose next turn's prompt is the
  previous prompt, the answer the engine gave and a new user message), in a pool too small to
  keep every prefix, so what the cache keeps and evicts decides the hits;
* expected tokens from the engine with prefix caching off: a hit must change nothing;
* the score, :func:`policy_merit`: the tokens the trusted engine computed and the steps it took
  on each scored workload, the reference's over the candidate's. Prefix-hit tokens (the
  trusted proxy's count of checked hits, re-admissions after a preemption included) and the
  hit rate (their share of every token the engine computed or found) are shown beside it.
"""

from __future__ import annotations

import math
import random
from typing import Any

from grader.harnesses.contract import PolicyScore
from grader.harnesses.engine_allocator import AllocatorHarness, EngineRun
from grader.harnesses.engine_run import VOCAB_SIZE, expected_tokens, random_workload
from grader.harnesses.registry import register


def group_workload(case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """``requests`` arriving at ``rate`` per step, each starting with one of ``groups`` system
    prompts of ``shared_prefix`` tokens (group g drawn with weight 1 / (g + 1): a few hot
    prompts and a tail), then ``prompt`` tokens of its own."""
    groups = int(case["groups"])
    prefixes = [
        [rng.randrange(VOCAB_SIZE) for _ in range(int(case["shared_prefix"]))]
        for _ in range(groups)
    ]
    weights = [1 / (group + 1) for group in range(groups)]
    requests = random_workload(case | {"shared_prefix": 0}, rng)
    for request in requests:
        (prefix,) = rng.choices(prefixes, weights)
        request["prompt"] = prefix + request["prompt"]
    return requests


def chat_workload(case: dict[str, Any], rng: random.Random, answers: Any) -> list[dict[str, Any]]:
    """``conversations`` of ``turns`` turns sharing one ``system_prompt``. Turn t + 1's prompt
    is turn t's prompt, the engine's answer to it (``answers(requests)``: greedy tokens by
    request id) and a new ``user`` message; it arrives when turn t would have finished served
    alone, plus a ``think`` time (steps)."""
    system = [rng.randrange(VOCAB_SIZE) for _ in range(int(case["system_prompt"]))]
    budget = int(case.get("max_num_batched_tokens", 64))
    history = {c: list(system) for c in range(int(case["conversations"]))}
    arrival = {c: rng.randint(0, int(case.get("spread", 0))) for c in history}
    requests: list[dict[str, Any]] = []
    for turn in range(int(case["turns"])):
        batch = []
        for conversation, before in history.items():
            user = [rng.randrange(VOCAB_SIZE) for _ in range(rng.randint(*case["user"]))]
            batch.append(
                {
                    "id": f"{conversation}.{turn}",
                    "prompt": before + user,
                    "max_tokens": rng.randint(*case["max_tokens"]),
                    "priority": 0,
                    "arrival_step": arrival[conversation],
                    "temperature": 0.0,
                    "top_k": 0,
                    "top_p": 1.0,
                    "seed": rng.randrange(2**31),
                }
            )
        said = answers(batch)
        for conversation, request in zip(history, batch, strict=True):
            history[conversation] = request["prompt"] + said[request["id"]]
            alone = -(-len(request["prompt"]) // budget) + request["max_tokens"]
            arrival[conversation] += alone + rng.randint(*case["think"])
        requests += batch
    return requests


def policy_merit(
    runs: dict[str, tuple[EngineRun, EngineRun]],
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """A prefix cache's score against the reference's, and both sides' figures: the geometric
    mean, over the scored workloads, of two ratios each above 1 when the candidate is better.

    * work: the tokens the trusted engine computed (prefill a hit saves, recomputation after a
      preemption, decodes), the reference's over the candidate's;
    * throughput: the steps the engine took to serve the workload, the reference's over the
      candidate's (fewer tokens to compute leave room in each step's token budget).

    Both are counted by the trusted engine, so the same cache scores the same on any host.
    """
    ratios, sides = [], ({}, {})
    for name, (theirs, ours) in runs.items():
        ratios += [ours.computed_tokens / theirs.computed_tokens, ours.steps / theirs.steps]
        for side, run in zip(sides, (theirs, ours), strict=True):
            side[name] = {
                "computed_tokens": run.computed_tokens,
                "prefix_hit_tokens": run.cached_tokens,
                "hit_rate": round(
                    run.cached_tokens / max(run.cached_tokens + run.computed_tokens, 1), 3
                ),
                "steps": run.steps,
                "preemptions": run.preemptions,
            }
    score = math.exp(sum(map(math.log, ratios)) / len(ratios))
    return round(score, 3), sides[0], sides[1]


@register
class PrefixCacheHarness(AllocatorHarness):
    kind = "prefix_cache"
    version = "1"

    def workload(self, case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
        mode = case.get("workload")
        if mode == "groups":
            return group_workload(case, rng)
        if mode == "chat":
            config = {"block_size": int(case["block_size"])}
            return chat_workload(case, rng, lambda batch: self.expected(batch, config))
        return random_workload(case, rng)

    def expected(self, requests: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, list]:
        """Greedy tokens from the engine with prefix caching off."""
        return expected_tokens(requests, config | {"enable_prefix_caching": False})

    def merit(self, scored: dict[str, Any]) -> PolicyScore:
        """:func:`policy_merit` of the scored workloads (drawn from the seed alone)."""
        score, mine, reference = policy_merit(scored)
        parts = [
            f"{name}: hit rate {mine[name]['hit_rate']:.1%} (reference "
            f"{reference[name]['hit_rate']:.1%}), {mine[name]['computed_tokens']} tokens "
            f"computed in {mine[name]['steps']} steps (reference "
            f"{reference[name]['computed_tokens']} in {reference[name]['steps']})"
            for name in scored
        ]
        message = f"{score:.3f}x the reference's policy: " + "; ".join(parts)
        return PolicyScore(score, message, mine, reference)
