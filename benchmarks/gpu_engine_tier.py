"""The engine problems' GPU tier on a card: one table from one device command.

Grades, through ``grader.grading.grade`` in this process (the worker's code path, sandboxed),
each engine problem's reference, a correct but slow solution and a wrong one, and prints
each throughput test's figures: device, model, output tokens/s, TTFT and TPOT p50/p99 of the
candidate's class and of the engine's own class in the same job (and the acceptance rate for
the verifier). JSON in ``$OUT/gpu_engine_tier.json``, rewritten after every grade, so a run
cut short still leaves what it measured. On a host without a card (or with ``--cpu``, which
hides it) the same runs are the CPU path (tiny model, labelled CPU).

By default each solution is graded on the throughput test first, then only the tests a policy
score is drawn from (the correctness tests run on the CPU, in CI): a wrong solution then
reaches the tier's checks. ``--full`` grades every test.
``--problems a,b`` picks problems; ``--runs N`` stops after N grades (a smoke test).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interview.settings")

SLOW_SCHEDULER = """
import time as _time

_schedule = PriorityPreemptScheduler.schedule


def _slow_schedule(self):
    _time.sleep(0.002)  # 2 ms of Python per decision
    return _schedule(self)


PriorityPreemptScheduler.schedule = _slow_schedule
"""
SLOW_SLO_SCHEDULER = SLOW_SCHEDULER.replace("PriorityPreemptScheduler", "GoodputScheduler")
# (problem, what the solution is, its code: a file of the problem's folder, or the reference
# plus an addition)
RUNS = [
    ("priority-scheduler", "reference", "reference.py"),
    ("priority-scheduler", "slow: reference + 2 ms a schedule()", ("reference.py", SLOW_SCHEDULER)),
    ("priority-scheduler", "wrong: FCFS, ignores priority", "wrong/fcfs_ignores_priority.py"),
    ("kv-allocator", "reference", "reference.py"),
    ("kv-allocator", "wrong: free() skips the last block", "wrong/free_skips_last_block.py"),
    ("batched-sampler", "reference", "reference.py"),
    ("batched-sampler", "slow: Python loop per row", "solutions/python_loop_draw.py"),
    ("batched-sampler", "wrong: temperature after filters", "wrong/temperature_after_filters.py"),
    ("spec-verifier", "reference", "reference.py"),
    ("spec-verifier", "slow: Python loop per row", "solutions/python_loop_rows.py"),
    ("spec-verifier", "wrong: accepts when p >= q", "wrong/accept_when_p_at_least_q.py"),
    ("radix-prefix-cache", "reference", "reference.py"),
    ("radix-prefix-cache", "wrong: evicts a held leaf", "wrong/evicts_referenced_leaf.py"),
    ("slo-scheduler", "reference", "reference.py"),
    ("slo-scheduler", "slow: reference + 2 ms a schedule()", ("reference.py", SLOW_SLO_SCHEDULER)),
    ("slo-scheduler", "wrong: chunk sized by the whole budget", "wrong/chunk_ignores_decodes.py"),
]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="hide the card: the CPU path")
    parser.add_argument("--full", action="store_true", help="grade every test, not the tier's")
    parser.add_argument("--problems", default="", help="comma-separated slugs (default: all)")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many grades")
    parser.add_argument(
        "--solutions", default="", help="comma-separated label prefixes: reference,slow,wrong"
    )
    return parser.parse_args()


def main() -> int:
    args = arguments()
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported
    import django

    django.setup()
    from grader.bank import PROBLEMS_DIR, problem_read
    from grader.grading import grade

    out = Path(os.environ.get("OUT", "var/gpu-engine-tier"))
    out.mkdir(parents=True, exist_ok=True)
    chosen = [slug for slug in args.problems.split(",") if slug]
    runs = [run for run in RUNS if not chosen or run[0] in chosen]
    kinds = tuple(kind for kind in args.solutions.split(",") if kind)
    if kinds:
        runs = [run for run in runs if run[1].startswith(kinds)]
    if args.runs:
        runs = runs[: args.runs]
    rows = []
    for slug, solution, source in runs:
        folder = PROBLEMS_DIR / slug
        if isinstance(source, tuple):
            code = (folder / source[0]).read_text() + source[1]
        else:
            code = (folder / source).read_text()
        spec = problem_read(folder).as_spec()
        if not args.full:
            # The tier's test first, then the scored tests a policy score is drawn from.
            tier = [t for t in spec.tests if t.get("throughput")]
            spec = dataclasses.replace(spec, tests=tier + [t for t in spec.tests if t.get("score")])
        started = time.monotonic()
        report = grade(spec, code, seed=11, hardware={})
        tests = [t for t in report.tests if t.name == "throughput"]
        test = tests[0] if tests else None
        rows.append(
            {
                "problem": slug,
                "solution": solution,
                "verdict": report.verdict.value,
                "grade_s": round(time.monotonic() - started, 1),
                "message": test.message if test else report.message,
                "candidate": test.details.get("throughput") if test else None,
                "engine": test.details.get("engine") if test else None,
                # Every test's outcome: which one decided a verdict other than accepted.
                "tests": [
                    {"name": t.name, "verdict": t.verdict.value, "message": t.message[:400]}
                    for t in report.tests
                ],
                "report": report.message[:400],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        (out / "gpu_engine_tier.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    lines = [
        "",
        "| problem | solution | verdict | device | tokens/s (engine's) | TTFT p50/p99 ms "
        "(engine's) | TPOT p50/p99 ms (engine's) | acceptance (engine's) | grade s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mine, own = row["candidate"] or {}, row["engine"] or {}
        if not mine:
            lines.append(
                f"| {row['problem']} | {row['solution']} | {row['verdict']} | | | | | | "
                f"{row['grade_s']} |"
            )
            continue
        acceptance = ""
        if "acceptance_rate" in mine:
            acceptance = f"{mine['acceptance_rate']:.1%} ({own['acceptance_rate']:.1%})"
        lines.append(
            f"| {row['problem']} | {row['solution']} | {row['verdict']} | {mine['device']} "
            f"({mine['model']}) | {mine['output_tokens_per_s']} ({own['output_tokens_per_s']}) "
            f"| {mine['ttft_ms']['p50']}/{mine['ttft_ms']['p99']} "
            f"({own['ttft_ms']['p50']}/{own['ttft_ms']['p99']}) "
            f"| {mine['tpot_ms']['p50']}/{mine['tpot_ms']['p99']} "
            f"({own['tpot_ms']['p50']}/{own['tpot_ms']['p99']}) | {acceptance} "
            f"| {row['grade_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
