"""Agreement of the written-answer judge with labelled answers, by kind.

    python benchmarks/answer_judge.py tests/interview/answer_cases/tuning.yaml \
        [--json benchmarks/answer_judge.json] [--show-misses]

Prints a table (cases, agreement, highest score per kind) and writes it as JSON; the figures in
interview/bank/README.md come from here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interview.judging import agreement_by_kind, answer_cases_load, target_judge  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, help="write the table here")
    parser.add_argument("--show-misses", action="store_true", help="list each disagreement")
    args = parser.parse_args()
    report = {}
    for path in args.cases:
        cases = answer_cases_load(path)
        target_judge(cases[0].target, "Warm the model up.")
        started = time.perf_counter()
        verdicts = [target_judge(c.target, c.text) for c in cases]
        first_ms = (time.perf_counter() - started) * 1000 / len(cases)
        started = time.perf_counter()
        for case in cases:  # statements cached, the answer embedded afresh: a grade's own cost
            target_judge(case.target, case.text.lower())
        warm_ms = (time.perf_counter() - started) * 1000 / len(cases)
        table = agreement_by_kind(cases, verdicts)
        print(
            f"\n{path}  ({len(cases)} cases; ms per answer: {first_ms:.0f} with each rubric's "
            f"first use, {warm_ms:.0f} after)"
        )
        print(f"{'kind':<11}{'cases':>6}{'agree':>7}{'agreement':>11}{'max score':>11}")
        for row in table.values():
            print(
                f"{row.kind:<11}{row.cases:>6}{row.agreed:>7}{row.agreement:>11.1%}"
                f"{row.max_score:>11.2f}"
            )
            if args.show_misses:
                for miss in row.disagreements:
                    print(f"    miss: {miss}")
        report[str(path)] = {
            "ms_per_answer_first_use": round(first_ms),
            "ms_per_answer": round(warm_ms),
        }
        report[str(path)] |= {
            kind: {"cases": r.cases, "agreed": r.agreed, "agreement": round(r.agreement, 4),
                   "max_score": round(r.max_score, 4), "disagreements": list(r.disagreements)}
            for kind, r in table.items()
        }  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
