"""The pictures of a candidate's own run that engine problems store with each test's result:
the scheduler's latencies per priority and batch timeline, the allocator's KV blocks in use.
They come from the trusted replay, stay small however long the run, and keep what matters
(every priority class, every preemption, the peak of the cache)."""

from __future__ import annotations

import json

from grader.harnesses.engine_allocator import PICTURE_POINTS, run_script, usage_picture
from grader.harnesses.engine_scheduler import (
    PICTURE_BYTES,
    PICTURE_COLUMNS,
    PICTURE_REQUESTS,
    _Request,
    replay,
    run_picture,
)


class RecordedLink:
    """A link whose sandbox gives recorded answers, one per call that needs one."""

    def __init__(self, answers: list) -> None:
        self.answers = iter(answers)

    def call(self, request: dict, answer=None) -> dict:
        return {"ok": True} if request["op"] == "open" else {"ok": True, "r": next(self.answers)}


def check_script(script, answers, num_blocks, block_size, usage=None) -> None:
    """Drive the trusted proxy and model through ``script`` with recorded answers."""
    from grader.harnesses.allocator_link import AllocatorProxy

    run_script(AllocatorProxy(num_blocks, block_size, link=RecordedLink(answers)), script, usage)


CONFIG = {"block_size": 4, "num_kv_blocks": 3, "max_num_seqs": 4, "max_num_batched_tokens": 16}
REQUESTS = [
    {"id": "0", "prompt": [1] * 8, "max_tokens": 3, "priority": 1, "arrival_step": 0},
    {"id": "1", "prompt": [2] * 8, "max_tokens": 1, "priority": 0, "arrival_step": 1},
]
# Request 0 prefills and gets its first token; request 1 (more urgent) arrives and preempts it
# (its cache is dropped: recompute); request 0 then recomputes its 9 tokens and decodes once.
TRACE = [
    {"s": [["0", 8]], "l": [["0", "running", 0, 2]]},
    {"s": [["1", 8]], "l": [["0", "waiting", 0, 0], ["1", "running", 0, 2]]},
    {"s": [["0", 9]], "l": [["0", "running", 0, 3]]},
    {"s": [["0", 1]], "l": [["0", "running", 9, 3]]},
]


def test_scheduler_picture_has_latencies_per_request_and_the_preemption_marked():
    state = replay(TRACE, REQUESTS, CONFIG)
    picture = run_picture(TRACE, state, CONFIG["num_kv_blocks"])
    assert picture == {
        "kind": "schedule",
        "steps": 4,
        "stride": 1,
        "num_kv_blocks": 3,
        "requests_total": 2,
        "requests": [
            {"id": "0", "priority": 1, "arrival": 0, "ttft": 1, "e2e": 4, "preemptions": 1},
            {"id": "1", "priority": 0, "arrival": 1, "ttft": 1, "e2e": 1, "preemptions": 0},
        ],
        "columns": [
            {"p": ["0"], "kv": 2},
            {"p": ["1"], "x": ["0"], "kv": 2},
            {"p": ["0"], "kv": 3},
            {"d": ["0"], "kv": 3},
        ],
    }


def _long_run(num_requests: int, steps: int) -> tuple[list[dict], dict[str, _Request]]:
    """A synthetic judged run: every request decodes for a stretch and is preempted once."""
    state = {}
    for index in range(num_requests):
        request = _Request(
            {
                "id": str(index),
                "prompt": [1] * 16,
                "max_tokens": 64,
                "priority": index % 3,
                "arrival_step": index * 10,
            }
        )
        start = request.arrival_step
        request.runs = [(start, "prefill")] + [(s, "decode") for s in range(start + 1, start + 900)]
        request.preempted_steps = [start + 450]
        request.preemptions = 1
        request.first_token_step, request.finished_step = start, start + 899
        state[request.id] = request
    trace = [{"s": [], "l": [[str(i), "running", 0, 4] for i in range(8)]}] * steps
    return trace, state


def test_a_long_scheduler_run_is_binned_and_stays_small():
    trace, state = _long_run(num_requests=200, steps=3000)
    picture = run_picture(trace, state, num_blocks=512)
    size = len(json.dumps(picture))
    assert size <= PICTURE_BYTES
    assert len(picture["columns"]) <= PICTURE_COLUMNS
    assert picture["stride"] * len(picture["columns"]) >= 3000
    assert picture["requests_total"] == 200
    assert len(picture["requests"]) == PICTURE_REQUESTS
    assert {r["priority"] for r in picture["requests"]} == {0, 1, 2}
    assert all(r["ttft"] == 1 and r["e2e"] == 900 for r in picture["requests"])
    shown = {r["id"] for r in picture["requests"]}
    preempted = {rid for column in picture["columns"] for rid in column.get("x", [])}
    assert preempted == shown  # every request shown keeps its preemption mark
    assert {c["kv"] for c in picture["columns"]} == {32}


def test_allocator_picture_counts_blocks_in_use_and_shared_after_every_op():
    # Sequence 0 computes 5 tokens (two blocks); sequence 1 forks it (both blocks shared); freeing
    # sequence 0 leaves sequence 1's blocks; freeing 1 empties the pool.
    script = [["new", 0, [1, 2, 3, 4, 5]], ["advance", 0, 8, 9], ["fork", 0, 1], ["free", 0]]
    script.append(["free", 1])
    results = [
        [0, [], 4],
        [True, [0, 1], [], 2],
        [5, [0, 1], 2],
        [[], 2],
        [[], 4],
    ]
    usage: list[tuple[int, int]] = []
    check_script(script, results, num_blocks=4, block_size=4, usage=usage)
    assert usage == [(0, 0), (2, 0), (2, 2), (2, 0), (0, 0)]
    assert usage_picture(usage, 4) == {
        "kind": "kv_blocks",
        "ops": 5,
        "stride": 1,
        "num_blocks": 4,
        "used": [0, 2, 2, 2, 0],
        "shared": [0, 0, 2, 0, 0],
    }


def test_a_long_allocator_script_is_binned_keeping_the_peak():
    usage = [(10, 1)] * 10_000
    usage[6_123] = (250, 40)  # one op at the top of the pool
    picture = usage_picture(usage, num_blocks=256)
    assert len(picture["used"]) == len(picture["shared"]) <= PICTURE_POINTS
    assert picture["stride"] == 50 and picture["ops"] == 10_000
    assert max(picture["used"]) == 250 and max(picture["shared"]) == 40
    assert picture["used"].count(250) == 1
    assert len(json.dumps(picture)) < 4096
