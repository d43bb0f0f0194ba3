"""The engine problems' GPU tier on a card: one table from one device command.

Grades, through ``grader.grading.grade`` in this process (the worker's code path, sandboxed),
the priority-scheduler's and kv-allocator's references and a scheduler that is the reference
with 2 ms added to every ``schedule()`` (a slow Python scheduler), and prints each throughput
test's figures: device, model, output tokens/s, TTFT and TPOT p50/p99 of the candidate's class
and of the engine's own class in the same job. JSON in ``$OUT/gpu_engine_tier.json``. On a
host without a card the same runs are the CPU path (tiny model, labelled CPU).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interview.settings")

import django  # noqa: E402

django.setup()

from grader.bank import PROBLEMS_DIR, problem_read  # noqa: E402
from grader.grading import grade  # noqa: E402

SLOW = """
import time as _time

_schedule = PriorityPreemptScheduler.schedule


def _slow_schedule(self):
    _time.sleep(0.002)  # 2 ms of Python per decision
    return _schedule(self)


PriorityPreemptScheduler.schedule = _slow_schedule
"""


def main() -> int:
    out = Path(os.environ.get("OUT", "var/gpu-engine-tier"))
    out.mkdir(parents=True, exist_ok=True)
    scheduler = (PROBLEMS_DIR / "priority-scheduler" / "reference.py").read_text()
    runs = [
        ("priority-scheduler", "reference", scheduler),
        ("priority-scheduler", "reference + 2 ms per schedule()", scheduler + SLOW),
        ("kv-allocator", "reference", (PROBLEMS_DIR / "kv-allocator" / "reference.py").read_text()),
    ]
    rows = []
    for slug, solution, code in runs:
        started = time.monotonic()
        report = grade(problem_read(PROBLEMS_DIR / slug).as_spec(), code, seed=11, hardware={})
        (test,) = [t for t in report.tests if t.name == "throughput"]
        rows.append(
            {
                "problem": slug,
                "solution": solution,
                "verdict": report.verdict.value,
                "grade_s": round(time.monotonic() - started, 1),
                "message": test.message,
                "candidate": test.details.get("throughput"),
                "engine": test.details.get("engine"),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(
        "\n| problem | solution | verdict | device | tokens/s (engine's) | TTFT p50/p99 ms "
        "(engine's) | TPOT p50/p99 ms (engine's) | grade s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        mine, own = row["candidate"] or {}, row["engine"] or {}
        if not mine:
            print(f"| {row['problem']} | {row['solution']} | {row['verdict']} | | | | | |")
            continue
        print(
            f"| {row['problem']} | {row['solution']} | {row['verdict']} | {mine['device']} "
            f"({mine['model']}) | {mine['output_tokens_per_s']} ({own['output_tokens_per_s']}) "
            f"| {mine['ttft_ms']['p50']}/{mine['ttft_ms']['p99']} "
            f"({own['ttft_ms']['p50']}/{own['ttft_ms']['p99']}) "
            f"| {mine['tpot_ms']['p50']}/{mine['tpot_ms']['p99']} "
            f"({own['tpot_ms']['p50']}/{own['tpot_ms']['p99']}) | {row['grade_s']} |"
        )
    (out / "gpu_engine_tier.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
