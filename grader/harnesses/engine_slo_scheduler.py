"""The ``slo_scheduler`` kind: the candidate's ``SLOScheduler`` (``engine/slo.py``) plans every
step of a bursty online workload of two request classes, each with a TTFT and a TPOT target,
in the trusted engine; it is scored on goodput.

Everything of the ``scheduler`` kind holds (``engine_scheduler.py``, ``scheduler_link.py``):
the engine runs on the trusted side, asks the candidate's scheduler in the sandbox for each
step's plan, answers its allocator calls with the engine's own allocator, and checks the plan
with :class:`~grader.harnesses.engine_scheduler.ScheduleJudge` before it runs (running
requests only, tokens left, block tables, the token budget, seats, progress, freed blocks,
every request finished within the serial bound, greedy tokens equal to the engine's own).
The classes are not priorities, so the priority rule is not judged: serving a later request
first is this problem's whole point.

What this kind adds: the classes' targets go to the scheduler (``slos``) and it is told the
step it plans (``now``); the judge's replay gives every request's TTFT and TPOT in steps,
from which the trusted side counts who met both targets (:func:`slo_figures`). Tests with
``beats_fcfs`` also serve the workload with the engine's own ``FCFSScheduler`` (in this
process, through the same protocol) and fail a policy whose goodput is below it; tests with
``score`` also serve it with the problem's reference, and :func:`policy_merit` compares them.
"""

from __future__ import annotations

import math
import mmap
import random
from typing import Any

from grader.harnesses.contract import CallTiming, PolicyScore
from grader.harnesses.engine_run import (
    ENGINE_DATA_TYPES,
    VOCAB_SIZE,
    CaseResult,
    channel_asker,
    fail,
)
from grader.harnesses.engine_scheduler import (
    SchedulerHarness,
    ScheduleRun,
    reference_schedule,
    run_picture,
)
from grader.harnesses.registry import register


def slo_targets(case: dict[str, Any]) -> dict[str, list[float]]:
    """The classes' targets as they cross to the sandbox: {class: [ttft_steps, tpot_steps]}."""
    return {
        str(index): [int(spec["ttft"]), float(spec["tpot"])]
        for index, spec in enumerate(case["classes"])
    }


def slo_workload(case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """An online workload: ``requests`` arriving at ``rate`` per step, and each ``bursts``
    entry's ``requests`` all at step ``at``; each request's class (its ``priority``) drawn by
    the classes' ``share``, its prompt and output lengths from the class's ranges."""
    classes = case["classes"]
    shares = [float(spec["share"]) for spec in classes]
    arrivals, clock = [], 0.0
    for _ in range(int(case["requests"])):
        clock += rng.expovariate(float(case["rate"]))
        arrivals.append(int(clock))
    for burst in case.get("bursts", []):
        arrivals += [int(burst["at"])] * int(burst["requests"])
    requests = []
    for index, arrival in enumerate(sorted(arrivals)):
        (cls,) = rng.choices(range(len(classes)), shares)
        spec = classes[cls]
        requests.append(
            {
                "id": str(index),
                "prompt": [rng.randrange(VOCAB_SIZE) for _ in range(rng.randint(*spec["prompt"]))],
                "max_tokens": rng.randint(*spec["max_tokens"]),
                "priority": cls,
                "arrival_step": arrival,
                "temperature": 0.0,
                "seed": rng.randrange(2**31),
            }
        )
    return requests


def slo_figures(run: ScheduleRun, slos: dict[str, list[float]]) -> dict[str, Any]:
    """Goodput and attainment per class of one judged run, in the judge's steps: a request
    meets its class's SLO when its TTFT (arrival to first token, both counted) and its TPOT
    (steps per output token after the first) are both within the targets."""
    from engine.slo import SLO

    targets = {cls: SLO(int(ttft), float(tpot)) for cls, (ttft, tpot) in slos.items()}
    met: dict[str, int] = dict.fromkeys(slos, 0)
    total: dict[str, int] = dict.fromkeys(slos, 0)
    ttft_missed = tpot_missed = 0
    for request in run.state.values():
        cls = str(request.priority)
        target = targets[cls]
        ttft = request.first_token_step - request.arrival_step + 1
        outputs = request.outputs
        tpot = (
            (request.finished_step - request.first_token_step) / (outputs - 1) if outputs > 1 else 0
        )
        total[cls] += 1
        ttft_missed += ttft > target.ttft_steps
        tpot_missed += tpot > target.tpot_steps
        met[cls] += target.met(ttft, tpot)
    return {
        "requests": sum(total.values()),
        "goodput": sum(met.values()),
        "met": met,
        "attainment": {cls: round(met[cls] / total[cls], 3) if total[cls] else 1.0 for cls in met},
        "ttft_missed": ttft_missed,
        "tpot_missed": tpot_missed,
        "steps": run.steps,
    }


def policy_merit(
    theirs: dict[str, Any], ours: dict[str, Any]
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """An SLO scheduler's score against the reference's on the same workload: the geometric
    mean of the goodput ratio and of each class's attainment ratio, the candidate's over the
    reference's (each count plus one, so a class nobody serves in time still compares).

    Goodput alone would let a policy buy it by abandoning a small class; each class's ratio
    weighs as much as the whole's. Counted in the trusted engine's steps, the same on any host.
    """
    ratios = [(theirs["goodput"] + 1) / (ours["goodput"] + 1)]
    ratios += [(theirs["met"][cls] + 1) / (ours["met"][cls] + 1) for cls in ours["met"]]
    return round(math.exp(sum(map(math.log, ratios)) / len(ratios)), 3), theirs, ours


# The baseline: the engine's FCFSScheduler, taking (and ignoring) an SLO scheduler's targets;
# trusted source, loaded in the worker as a problem's reference is.
FCFS_CODE = """
from engine.schedulers import FCFSScheduler


class FCFS(FCFSScheduler):
    def __init__(self, allocator, max_num_seqs=256, max_num_batched_tokens=8192, slos=None):
        super().__init__(allocator, max_num_seqs, max_num_batched_tokens)
"""


@register
class SLOSchedulerHarness(SchedulerHarness):
    kind = "slo_scheduler"
    version = "1"
    sandbox_paths = (*ENGINE_DATA_TYPES, "engine/scheduler.py", "engine/slo.py")

    def workload(self, case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
        return slo_workload(case, rng)

    def slos(self, case: dict[str, Any]) -> dict[str, list[float]]:
        return slo_targets(case)

    @staticmethod
    def own_scheduler() -> type:
        from engine.schedulers import FCFSScheduler

        return FCFSScheduler

    def judged(
        self,
        case: dict[str, Any],
        run: ScheduleRun,
        requests: list[dict[str, Any]],
        config: dict[str, Any],
        max_steps: int,
        timing: CallTiming,
    ) -> CaseResult:
        """Goodput and attainment of a checked run; FCFS's (``beats_fcfs``: no lower) and the
        reference's (``score``) on the same workload beside them."""
        slos = self.slos(case)
        mine = slo_figures(run, slos)
        message = _said(mine)
        details = mine | {"trace": run_picture(run.trace, run.state, config["num_kv_blocks"])}
        if case.get("beats_fcfs") or case.get("score"):
            run_fcfs = reference_schedule(FCFS_CODE, "FCFS", requests, config, max_steps, slos)
            fcfs = slo_figures(run_fcfs, slos)
            details["fcfs"] = fcfs
            message += f" (FCFS: {fcfs['goodput']})"
            if case.get("beats_fcfs") and mine["goodput"] < fcfs["goodput"]:
                raise fail(
                    f"goodput below FCFS's: {_said(mine)}; the engine's FCFSScheduler met "
                    f"{fcfs['goodput']} on the same workload ({_classes(fcfs)})",
                    **details,
                )
        if case.get("score"):
            spec = self.spec
            run_ours = reference_schedule(
                spec.reference_code, spec.entry_point, requests, config, max_steps, slos
            )
            ours = slo_figures(run_ours, slos)
            details["reference"] = ours
            message += f"; the reference: {ours['goodput']}"
            self.scored[case["name"]] = (mine, ours, details["fcfs"])
        return CaseResult(timing, message, details)

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        from grader.harnesses.scheduler_link import serve_in_sandbox

        return serve_in_sandbox(entry, request, channel_asker(SLOSchedulerHarness.channel))

    def merit(self, scored: dict[str, Any]) -> PolicyScore:
        """:func:`policy_merit` of the scored test's run (the workload the seed alone draws)."""
        (mine, ours, fcfs), *_ = scored.values()
        score, theirs, reference = policy_merit(mine, ours)
        message = (
            f"{score:.3f}x the reference's policy: goodput {mine['goodput']} of "
            f"{mine['requests']} ({_classes(mine)}); reference {ours['goodput']} "
            f"({_classes(ours)}); FCFS {fcfs['goodput']} ({_classes(fcfs)})"
        )
        return PolicyScore(score, message, theirs | {"fcfs": fcfs}, reference | {"fcfs": fcfs})


def _said(figures: dict[str, Any]) -> str:
    return (
        f"{figures['goodput']} of {figures['requests']} requests met both SLOs "
        f"({_classes(figures)}) in {figures['steps']} steps"
    )


def _classes(figures: dict[str, Any]) -> str:
    return ", ".join(f"class {cls} {share:.0%}" for cls, share in figures["attainment"].items())
