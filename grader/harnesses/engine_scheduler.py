"""The ``scheduler`` kind: the candidate's ``Scheduler`` class runs a real serving workload.

In the sandbox the engine (tiny model, CPU, float32) is built with ``scheduler_cls`` set to the
candidate's class, and the workload is fed on a step clock. Right after every ``schedule()``
the harness records the plan (who got how many tokens) and, for every live request, its
status, ``num_computed_tokens`` and block-table length. The trusted side then replays that
trace against its own model of the workload, where it alone knows every prompt and output
length, and checks each step:

* the plan: only running requests, each given 1 to (known - computed) tokens, a block table
  covering them, at most ``max_num_seqs`` requests and ``max_num_batched_tokens`` tokens;
* the KV cache: the live block tables fit in the pool (prefix caching is off, so no sharing);
* progress: ``num_computed_tokens`` only moves by what was scheduled, or drops to 0 (a
  preemption by recompute);
* priority: when a request of priority ``q`` ran, no request of better priority ``p < q`` was
  left without tokens if it was already in the cache, or, if it was waiting, when its blocks
  (for all its known tokens) fit in the free blocks plus those of the worse-priority residents;
* starvation: every request finishes within the serial bound (each request's steps alone,
  one request after another), and its greedy tokens equal the engine's own.

A test with ``score: true`` also runs the same workload through the problem's reference
scheduler on the trusted side and reports both policies' figures (output tokens per step, p99
TTFT of the priority-0 class, in steps: deterministic, the same on any hardware); the timed
calls measure wall-clock throughput, scored relative to the reference by ``grading.py``.
"""

from __future__ import annotations

import json
import mmap
import random
from typing import TYPE_CHECKING, Any

from grader.harnesses import register
from grader.harnesses.base import clock_ns
from grader.harnesses.engine_run import (
    CaseResult,
    EngineHarness,
    drive,
    engine_class_used,
    expected_tokens,
    fail,
    one_thread,
    outputs_mismatch,
    random_workload,
    serial_bound,
    tiny_engine,
)

if TYPE_CHECKING:
    from grader.sandbox import SandboxSession

ENGINE_KEYS = ("block_size", "num_kv_blocks", "max_num_seqs", "max_num_batched_tokens")
# A run's picture on the results page (one per test, stored with its result): this many
# requests at most, this many timeline columns (a longer run puts several steps in a column),
# and this many bytes of JSON at most, so eight tests stay well under a megabyte.
PICTURE_REQUESTS = 64
PICTURE_COLUMNS = 160
PICTURE_BYTES = 24 * 1024


def engine_config(case: dict[str, Any]) -> dict[str, Any]:
    """The EngineConfig fields of a case: a small pool, prefix caching off (no shared blocks)."""
    return {key: int(case[key]) for key in ENGINE_KEYS} | {"enable_prefix_caching": False}


class _Request:
    """The trusted side's state of one request during the replay."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.id = request["id"]
        self.priority = int(request["priority"])
        self.arrival_step = int(request["arrival_step"])
        self.prompt_len = len(request["prompt"])
        self.max_tokens = int(request["max_tokens"])
        self.outputs = 0
        self.computed = 0
        self.preemptions = 0
        self.first_token_step: int | None = None
        self.finished_step: int | None = None
        #: (step, "prefill" or "decode") for every step it ran; the steps it was preempted at.
        self.runs: list[tuple[int, str]] = []
        self.preempted_steps: list[int] = []

    @property
    def known(self) -> int:
        return self.prompt_len + self.outputs

    def label(self) -> str:
        return f"request {self.id} (priority {self.priority})"


def replay(
    trace: list[dict[str, Any]], requests: list[dict[str, Any]], config: dict[str, Any]
) -> dict[str, _Request]:
    """Check every step of ``trace``; returns the final states or raises a wrong answer."""
    block_size, num_blocks = config["block_size"], config["num_kv_blocks"]
    budget, max_seqs = config["max_num_batched_tokens"], config["max_num_seqs"]
    state = {r["id"]: _Request(r) for r in requests}

    def blocks(tokens: int) -> int:
        return -(-tokens // block_size)

    for step, record in enumerate(trace):
        live: dict[str, tuple[str, int, int]] = {}
        for rid, status, computed, num_table in record["l"]:
            request = state.get(rid)
            if request is None or request.arrival_step > step:
                raise fail(f"step {step}: an unknown request {rid!r} is live")
            if request.finished_step is not None:
                raise fail(f"step {step}: {request.label()} is live after it finished")
            if computed != request.computed:
                if computed != 0:
                    raise fail(
                        f"step {step}: {request.label()} has num_computed_tokens {computed}, "
                        f"but only {request.computed} of its tokens were computed"
                    )
                request.computed = 0
                request.preemptions += 1
                request.preempted_steps.append(step)
            live[rid] = (status, computed, num_table)
        used = sum(num_table for _, _, num_table in live.values())
        if used > num_blocks:
            raise fail(
                f"step {step}: live block tables hold {used} blocks; the pool has {num_blocks}"
            )
        plan: dict[str, int] = {}
        for rid, num_new in record["s"]:
            request = state.get(rid)
            if rid not in live or request is None:
                raise fail(f"step {step}: request {rid!r} was scheduled but is not live")
            if rid in plan:
                raise fail(f"step {step}: {request.label()} was scheduled twice")
            status, computed, num_table = live[rid]
            left = request.known - computed
            if status != "running":
                raise fail(f"step {step}: {request.label()} was scheduled with status {status}")
            if not 1 <= num_new <= left:
                raise fail(
                    f"step {step}: {request.label()} was given {num_new} tokens; it has "
                    f"{left} left to compute"
                )
            if num_table * block_size < computed + num_new:
                raise fail(
                    f"step {step}: {request.label()} was given {num_new} tokens but its block "
                    f"table covers only {num_table * block_size} of the {computed + num_new} "
                    "slots (append_slots was not called, or returned False)"
                )
            plan[rid] = num_new
        total = sum(plan.values())
        if total > budget:
            raise fail(f"step {step}: {total} tokens scheduled, over the token budget of {budget}")
        if len(plan) > max_seqs:
            raise fail(f"step {step}: {len(plan)} requests ran; max_num_seqs is {max_seqs}")
        _check_priority(step, plan, live, state, num_blocks - used, blocks)
        for rid, num_new in plan.items():
            request = state[rid]
            decode = request.outputs > 0 and request.computed == request.known - 1
            request.runs.append((step, "decode" if decode else "prefill"))
            request.computed += num_new
            if request.computed == request.known:
                request.outputs += 1
                if request.first_token_step is None:
                    request.first_token_step = step
                if request.outputs == request.max_tokens:
                    request.finished_step = step
    return state


def _check_priority(step, plan, live, state, free, blocks) -> None:
    """No better-priority request was left out while worse-priority work ran in its place."""
    if not plan:
        return
    worst_ran = max(plan, key=lambda rid: state[rid].priority)
    worst = state[worst_ran]
    for rid, (_, _, num_table) in sorted(live.items(), key=lambda item: state[item[0]].priority):
        request = state[rid]
        if rid in plan or request.priority >= worst.priority:
            continue
        if num_table:
            raise fail(
                f"step {step}: {request.label()} holds KV blocks but got no tokens while "
                f"{worst.label()} ran"
            )
        freed = sum(live[other][2] for other in live if state[other].priority > request.priority)
        need = blocks(request.known)
        if free + freed >= need:
            raise fail(
                f"step {step}: {request.label()} waited while {worst.label()} ran; preempting "
                f"the lower-priority requests would have freed {freed} blocks ({free} were "
                f"already free) and it needs {need}"
            )


def figures(state: dict[str, _Request], steps: int) -> dict[str, float]:
    """Hardware-independent figures of one run: tokens per step, priority-0 TTFT in steps."""
    from engine.metrics import percentiles

    high = [
        r.first_token_step - r.arrival_step + 1
        for r in state.values()
        if r.priority == 0 and r.first_token_step is not None
    ]
    return {
        "steps": steps,
        "output_tokens_per_step": round(sum(r.outputs for r in state.values()) / max(steps, 1), 3),
        "p99_ttft_steps_priority_0": round(percentiles(high)["p99"], 2),
        "preemptions": sum(r.preemptions for r in state.values()),
    }


def run_picture(
    trace: list[dict[str, Any]], state: dict[str, _Request], num_blocks: int
) -> dict[str, Any]:
    """What the results page draws of one judged run, from the replayed (checked) trace.

    Per request (in arrival order, at most ``PICTURE_REQUESTS``): priority, arrival step,
    TTFT and end-to-end latency in steps, preemptions. Per timeline column: who ran a prefill
    chunk (``p``) or a decode (``d``), who was preempted (``x``), the most KV blocks in use
    (``kv``). A long run is binned, ``stride`` steps a column, until the JSON fits
    ``PICTURE_BYTES``.
    """
    ordered = sorted(state.values(), key=lambda r: (r.arrival_step, len(r.id), r.id))
    shown = ordered[:PICTURE_REQUESTS]
    requests = [
        {
            "id": r.id,
            "priority": r.priority,
            "arrival": r.arrival_step,
            "ttft": _steps_since(r.arrival_step, r.first_token_step),
            "e2e": _steps_since(r.arrival_step, r.finished_step),
            "preemptions": r.preemptions,
        }
        for r in shown
    ]
    kv = [sum(int(entry[3]) for entry in record["l"]) for record in trace]
    stride = max(1, -(-len(trace) // PICTURE_COLUMNS))
    while True:
        picture = {
            "kind": "schedule",
            "steps": len(trace),
            "stride": stride,
            "num_kv_blocks": num_blocks,
            "requests_total": len(ordered),
            "requests": requests,
            "columns": _columns(shown, kv, stride),
        }
        if stride >= len(trace) or len(json.dumps(picture)) <= PICTURE_BYTES:
            return picture
        stride *= 2


def _steps_since(arrival_step: int, step: int | None) -> int | None:
    """Steps from a request's arrival to the end of ``step``, counting both (None: never)."""
    return None if step is None else step - arrival_step + 1


def _columns(requests: list[_Request], kv: list[int], stride: int) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = [
        {"p": [], "d": [], "x": [], "kv": max(kv[start : start + stride])}
        for start in range(0, len(kv), stride)
    ]
    for request in requests:
        decoded: set[int] = set()
        for step, kind in request.runs:
            column = columns[step // stride]
            if kind == "prefill" and request.id not in column["p"]:
                column["p"].append(request.id)
            elif kind == "decode":
                decoded.add(step // stride)
        for index in sorted(decoded):
            if request.id not in columns[index]["p"]:
                columns[index]["d"].append(request.id)
        for step in request.preempted_steps:
            if request.id not in columns[step // stride]["x"]:
                columns[step // stride]["x"].append(request.id)
    return [{key: value for key, value in column.items() if value != []} for column in columns]


@register
class SchedulerHarness(EngineHarness):
    kind = "scheduler"
    version = "1"
    engine_classes = (
        "engine.schedulers.FCFSScheduler",
        "engine.schedulers.PriorityScheduler",
        "engine.schedulers.StaticScheduler",
    )

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        config = engine_config(case)
        requests = random_workload(case, rng)
        max_steps = serial_bound(requests, config["max_num_batched_tokens"])
        expected = expected_tokens(requests, config)
        request = {"op": "run", "config": config, "requests": requests, "max_steps": max_steps}
        reply, timing = self.call(session, request, case, timed)
        state, steps = self._judge(reply, requests, config, expected, max_steps)
        found = figures(state, steps)
        if timed:
            return CaseResult(timing)
        picture = run_picture(reply["trace"], state, config["num_kv_blocks"])
        if not case.get("score"):
            return CaseResult(timing, details=found | {"trace": picture})
        reference = self._reference_figures(requests, config, max_steps)
        message = (
            f"{found['output_tokens_per_step']} output tokens/step (reference "
            f"{reference['output_tokens_per_step']}); p99 TTFT of priority 0: "
            f"{found['p99_ttft_steps_priority_0']} steps (reference "
            f"{reference['p99_ttft_steps_priority_0']})"
        )
        return CaseResult(timing, message, found | {"reference": reference, "trace": picture})

    def _judge(self, reply, requests, config, expected, max_steps):
        trace, outputs = reply.get("trace"), reply.get("outputs")
        if not isinstance(trace, list) or not isinstance(outputs, dict):
            raise fail("the sandbox returned no trace")
        state = replay(trace, requests, config)
        for request in state.values():
            if request.finished_step is None:
                if reply.get("steps", 0) >= max_steps:
                    raise fail(
                        f"{request.label()} did not finish within {max_steps} steps, the "
                        "serial bound (every request run alone, one after another): starved"
                    )
                raise fail(f"{request.label()} never finished")
        wrong = outputs_mismatch(outputs, expected, requests)
        if wrong:
            raise fail(wrong)
        return state, len(trace)

    def _reference_figures(self, requests, config, max_steps) -> dict[str, float]:
        """The problem's reference scheduler on the same workload, run here (trusted code)."""
        namespace: dict[str, Any] = {"__name__": "reference"}
        exec(compile(self.spec.reference_code, "reference.py", "exec"), namespace)
        reference_cls = namespace[self.spec.entry_point]
        trace: list[dict[str, Any]] = []
        with one_thread():
            engine = tiny_engine(config, scheduler_cls=reference_cls)
            drive(engine, requests, max_steps, clock_ns, _recorder(trace))
        return figures(replay(trace, requests, config), len(trace))

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        reused = engine_class_used(entry, SchedulerHarness.engine_classes)
        if reused:
            return {"ok": True, "elapsed_ns": 0, "reuses": reused}
        trace: list[dict[str, Any]] = []
        engine = tiny_engine(request["config"], scheduler_cls=entry)
        result = drive(
            engine, request["requests"], request["max_steps"], clock_ns, _recorder(trace)
        )
        return {"ok": True, **result, "trace": trace}


def _recorder(trace: list[dict[str, Any]]):
    """on_schedule for drive(): append the plan and every live request's state to ``trace``."""

    def record(live, plan) -> None:
        trace.append(
            {
                "s": [[seq.request_id, int(num_new)] for seq, num_new in plan.scheduled],
                "l": [
                    [rid, seq.status.value, int(seq.num_computed_tokens), len(seq.block_table)]
                    for rid, seq in live.items()
                    if not seq.is_finished
                ],
            }
        )

    return record
