"""The ``scheduler`` kind: the candidate's ``Scheduler`` decides every step of a real serving
workload, which the trusted engine runs.

The engine (tiny model, CPU, float32) runs on the trusted side with a
:class:`~grader.harnesses.scheduler_link.SchedulerProxy` as its scheduler: each step it asks
the candidate's scheduler in the sandbox for a plan (the candidate works on mirror Sequences,
and its allocator calls are answered by the engine's own allocator), and checks the plan and
every state change before the engine runs it. :class:`ScheduleJudge` holds the trusted model
of the workload, where this side alone knows every prompt and output length, and checks each
step:

* the plan: only running requests, each given 1 to (known - computed) tokens, a block table
  covering them, at most ``max_num_seqs`` requests and ``max_num_batched_tokens`` tokens;
* progress: ``num_computed_tokens`` only moves by what was scheduled, or drops to 0 (a
  preemption by recompute); a waiting request holds no blocks; a finished one is never
  scheduled, and ``finish`` frees its blocks;
* priority: when a request of priority ``q`` ran, no request of better priority ``p < q`` was
  left without tokens if it was already in the cache, or, if it was waiting, when its blocks
  (for all its known tokens) fit in the free blocks plus those of the worse-priority residents;
* starvation: every request finishes within the serial bound (each request's steps alone,
  one request after another), and its greedy tokens equal the engine's own.

The figures (output tokens per step, p99 TTFT of priority 0, preemptions, in steps) and the
picture of the run come from the judge and the trusted engine, never from the sandbox. The
test with ``score: true`` draws its workload from the secret seed alone and also runs the
problem's reference on it, in this process through the same protocol: the policy score is
:func:`policy_merit` of those two runs. A timed call is one whole workload; its time is the
trusted clock around the candidate's decisions.
"""

from __future__ import annotations

import functools
import json
import math
import mmap
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import clock_ns
from grader.harnesses.contract import CallTiming, PolicyScore
from grader.harnesses.engine_run import (
    ENGINE_DATA_TYPES,
    CaseResult,
    InProcessLink,
    Link,
    PolicyHarness,
    channel_asker,
    drive,
    expected_tokens,
    fail,
    memoized_by_value,
    one_thread,
    outputs_mismatch,
    random_workload,
    reference_class,
    run_reference,
    serial_bound,
    throughput_case,
    throughput_message,
    throughput_run,
    throughput_target,
    tiny_engine,
)
from grader.harnesses.registry import register

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


class ScheduleJudge:
    """The trusted model of one run: checks each step's record as the trusted side saw it
    (``{"s": [[id, tokens]], "l": [[id, status, computed, blocks]]}``, the plan and every
    live request) and keeps each request's progress; raises a wrong answer naming the step."""

    def __init__(
        self, requests: list[dict[str, Any]], config: dict[str, Any], priority_rule: bool = True
    ) -> None:
        #: whether ``priority`` is a priority (the rule below), or only a class (an SLO's).
        self.priority_rule = priority_rule
        self.block_size, self.num_blocks = config["block_size"], config["num_kv_blocks"]
        self.budget, self.max_seqs = config["max_num_batched_tokens"], config["max_num_seqs"]
        self.state = {r["id"]: _Request(r) for r in requests}

    def blocks(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def step(self, step: int, record: dict[str, Any]) -> None:
        state = self.state
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
        if used > self.num_blocks:
            raise fail(
                f"step {step}: live block tables hold {used} blocks; the pool has {self.num_blocks}"
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
            if num_table * self.block_size < computed + num_new:
                raise fail(
                    f"step {step}: {request.label()} was given {num_new} tokens but its block "
                    f"table covers only {num_table * self.block_size} of the "
                    f"{computed + num_new} slots (append_slots was not called, or returned False)"
                )
            plan[rid] = num_new
        total = sum(plan.values())
        if total > self.budget:
            raise fail(
                f"step {step}: {total} tokens scheduled, over the token budget of {self.budget}"
            )
        if len(plan) > self.max_seqs:
            raise fail(f"step {step}: {len(plan)} requests ran; max_num_seqs is {self.max_seqs}")
        if self.priority_rule:
            _check_priority(step, plan, live, state, self.num_blocks - used, self.blocks)
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


def replay(
    trace: list[dict[str, Any]], requests: list[dict[str, Any]], config: dict[str, Any]
) -> dict[str, _Request]:
    """Check every step of a recorded ``trace``; returns the final states or raises."""
    judge = ScheduleJudge(requests, config)
    for step, record in enumerate(trace):
        judge.step(step, record)
    return judge.state


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
    return {
        "steps": steps,
        "output_tokens_per_step": round(sum(r.outputs for r in state.values()) / max(steps, 1), 3),
        "p99_ttft_steps_priority_0": round(_p99_ttft(state, 0), 2),
        "preemptions": sum(r.preemptions for r in state.values()),
    }


def _p99_ttft(state: dict[str, _Request], priority: int) -> float:
    """p99 of the steps from arrival to first token (both counted) of a priority's requests."""
    from engine.metrics import percentiles

    ttft = [
        _steps_since(r.arrival_step, r.first_token_step)
        for r in state.values()
        if r.priority == priority and r.first_token_step is not None
    ]
    return percentiles(ttft)["p99"]


def policy_merit(
    theirs: ScheduleRun, ours: ScheduleRun
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """A priority scheduler's score against the reference's on the same workload, and both
    sides' figures: the geometric mean of two ratios, each above 1 when the candidate is better.

    * throughput: output tokens per step (the workload's tokens are fixed, so this is the
      reference's steps to drain it over the candidate's);
    * the urgent class's tail latency: p99 TTFT, in steps, of the most urgent priority in the
      workload (priority 0 nearly always), the reference's over the candidate's.

    This is what a serving engineer asks of a priority scheduler: the urgent requests' tail
    latency (their SLO), without paying for it in throughput. The geometric mean weighs a 10%
    gain in one as much as a 10% loss in the other, so neither can be bought with the other
    unseen. Both are counted in engine steps, so the score is the same on any host, under any
    load; wall time is reported beside it.
    """
    urgent = min(r.priority for r in ours.state.values())
    sides = []
    for run in (theirs, ours):
        outputs = sum(r.outputs for r in run.state.values())
        sides.append(
            {
                "steps": run.steps,
                "output_tokens_per_step": outputs / run.steps,
                "urgent_priority": urgent,
                "p99_ttft_steps_urgent": _p99_ttft(run.state, urgent),
                "preemptions": sum(r.preemptions for r in run.state.values()),
            }
        )
    mine, reference = sides
    throughput = mine["output_tokens_per_step"] / reference["output_tokens_per_step"]
    latency = reference["p99_ttft_steps_urgent"] / mine["p99_ttft_steps_urgent"]
    rounded = [
        {key: round(value, 3) if isinstance(value, float) else value for key, value in side.items()}
        for side in sides
    ]
    return round(math.sqrt(throughput * latency), 3), rounded[0], rounded[1]


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


@dataclass
class ScheduleRun:
    """One run of a workload in the trusted engine: the judge's final states, the checked
    trace, the outputs by request id and the steps taken."""

    state: dict[str, _Request]
    trace: list[dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    steps: int


def run_schedule(
    link: Link | InProcessLink,
    requests: list[dict[str, Any]],
    config: dict[str, Any],
    max_steps: int,
    slos: dict[str, list[float]] | None = None,
) -> ScheduleRun:
    """Serve ``requests`` in the trusted engine, every step planned by the scheduler behind
    ``link`` and checked before it runs; raises a wrong answer at the first broken rule.
    With ``slos`` (an SLO scheduler's targets by class) the classes are not priorities: the
    priority rule is not judged, and the targets go to the scheduler."""
    from grader.harnesses.scheduler_link import SchedulerProxy

    judge = ScheduleJudge(requests, config, priority_rule=slos is None)
    proxy_cls = functools.partial(SchedulerProxy, link=link, judge=judge, slos=slos)
    with one_thread():
        engine = tiny_engine(config, scheduler_cls=proxy_cls)
        result = drive(engine, requests, max_steps, clock_ns)
    for request in judge.state.values():
        if request.finished_step is None:
            if result["steps"] >= max_steps:
                raise fail(
                    f"{request.label()} did not finish within {max_steps} steps, the serial "
                    "bound (every request run alone, one after another): starved"
                )
            raise fail(f"{request.label()} never finished")
    engine.scheduler.close()
    return ScheduleRun(judge.state, engine.scheduler.trace, result["outputs"], result["steps"])


@memoized_by_value
def reference_schedule(
    code: str,
    entry_point: str,
    requests: list[dict[str, Any]],
    config: dict[str, Any],
    max_steps: int,
    slos: dict[str, list[float]] | None = None,
) -> ScheduleRun:
    """A trusted scheduler (``code``: a problem's reference, or a baseline's source) on a
    workload, run in this process; ``slos`` as for :func:`run_schedule`."""
    from grader.harnesses.scheduler_link import SchedulerMirror

    link = InProcessLink(SchedulerMirror(reference_class(code, entry_point)))
    return run_reference(lambda: run_schedule(link, requests, config, max_steps, slos))


@register
class SchedulerHarness(PolicyHarness):
    kind = "scheduler"
    version = "2"
    sandbox_paths = (*ENGINE_DATA_TYPES, "engine/scheduler.py")

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        if case.get("throughput"):
            return self._throughput(session, case, rng)
        config = engine_config(case)
        requests = self.workload(case, rng)
        max_steps = serial_bound(requests, config["max_num_batched_tokens"])
        link = Link(session, self.timeout_s(case))
        run = run_schedule(link, requests, config, max_steps, self.slos(case))
        timing = link.timing()
        if timed:
            return CaseResult(timing)
        wrong = outputs_mismatch(run.outputs, expected_tokens(requests, config), requests)
        if wrong:
            raise fail(wrong)
        return self.judged(case, run, requests, config, max_steps, timing)

    def judged(
        self,
        case: dict[str, Any],
        run: ScheduleRun,
        requests: list[dict[str, Any]],
        config: dict[str, Any],
        max_steps: int,
        timing: CallTiming,
    ) -> CaseResult:
        """A checked run's figures, picture and (a scored test) the reference's run beside it."""
        found = figures(run.state, run.steps)
        picture = run_picture(run.trace, run.state, config["num_kv_blocks"])
        if not case.get("score"):
            return CaseResult(timing, details=found | {"trace": picture})
        reference = self._reference_run(requests, config, max_steps)
        self.scored[case["name"]] = (run, reference)
        ours = figures(reference.state, reference.steps)
        message = (
            f"{found['output_tokens_per_step']} output tokens/step (reference "
            f"{ours['output_tokens_per_step']}); p99 TTFT of priority 0: "
            f"{found['p99_ttft_steps_priority_0']} steps (reference "
            f"{ours['p99_ttft_steps_priority_0']})"
        )
        return CaseResult(timing, message, found | {"reference": ours, "trace": picture})

    def _throughput(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random
    ) -> CaseResult:
        """The GPU tier's test: the candidate's scheduler, every step checked as in the other
        tests, serving a workload in the engine on this worker's card (SmolLM2's shape) or,
        without one, the tiny model on the CPU; then the engine's own class
        (:meth:`own_scheduler`: ``PriorityScheduler``) on the same workload. Output tokens/s
        and TTFT/TPOT percentiles of both, labelled
        with the device; a slow ``schedule()`` is lost throughput here. Greedy tokens are
        checked on the CPU (float32); on a card bfloat16's batch-dependent rounding may move
        them, and the other tests have checked them."""
        from grader.harnesses.scheduler_link import SchedulerProxy

        target = throughput_target()
        case = throughput_case(case, target)
        config = engine_config(case)
        requests = [r | {"arrival_step": 0} for r in self.workload(case, rng)]
        max_steps = serial_bound(requests, config["max_num_batched_tokens"])
        link = Link(session, self.timeout_s(case))
        judges: list[ScheduleJudge] = []
        slos = self.slos(case)

        def linked(chosen: list[dict[str, Any]]) -> dict[str, Any]:
            judges.append(ScheduleJudge(chosen, config, priority_rule=slos is None))
            proxy = functools.partial(SchedulerProxy, link=link, judge=judges[-1], slos=slos)
            return {"scheduler_cls": proxy}

        theirs = throughput_run(target, requests, config, max_steps, linked)
        unfinished = [r.label() for r in judges[-1].state.values() if r.finished_step is None]
        if unfinished:
            raise fail(f"{unfinished[0]} did not finish within {max_steps} steps: starved")
        if target.device == "cpu":
            wrong = outputs_mismatch(theirs["outputs"], expected_tokens(requests, config), requests)
            if wrong:
                raise fail(wrong)
        own = self.own_scheduler()
        ours = throughput_run(
            target, requests, config, max_steps, lambda chosen: {"scheduler_cls": own}
        )
        message = throughput_message(theirs["figures"], ours["figures"], own.__name__)
        details = {"throughput": theirs["figures"], "engine": ours["figures"]}
        return CaseResult(link.timing(), message, details)

    def workload(self, case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
        """The requests a test serves (drawn from ``rng``)."""
        return random_workload(case, rng)

    def slos(self, case: dict[str, Any]) -> dict[str, list[float]] | None:
        """The classes' SLO targets an SLO scheduler is given; None: priorities, judged so."""
        return None

    @staticmethod
    def own_scheduler() -> type:
        """The engine's own class the throughput test compares with."""
        from engine.schedulers import PriorityScheduler

        return PriorityScheduler

    def merit(self, scored: dict[str, Any]) -> PolicyScore:
        """:func:`policy_merit` of the scored test's run (the workload the seed alone draws)."""
        (theirs, ours), *_ = scored.values()
        score, mine, reference = policy_merit(theirs, ours)
        urgent = mine["urgent_priority"]
        message = (
            f"{score:.3f}x the reference's policy: {mine['output_tokens_per_step']} output "
            f"tokens/step in {mine['steps']} steps (reference "
            f"{reference['output_tokens_per_step']} in {reference['steps']}), p99 TTFT of "
            f"priority {urgent} {mine['p99_ttft_steps_urgent']} steps (reference "
            f"{reference['p99_ttft_steps_urgent']})"
        )
        return PolicyScore(score, message, mine, reference)

    def _reference_run(
        self, requests: list[dict[str, Any]], config: dict[str, Any], max_steps: int
    ) -> ScheduleRun:
        """The problem's reference on the same workload, in this process (trusted code)."""
        return reference_schedule(
            self.spec.reference_code, self.spec.entry_point, requests, config, max_steps
        )

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        from grader.harnesses.scheduler_link import serve_in_sandbox

        return serve_in_sandbox(entry, request, channel_asker(SchedulerHarness.channel))
