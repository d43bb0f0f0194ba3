"""How surely grammar-sampler's tests reject each wrong and cheating solution.

Each solution in the problem's ``wrong/`` and ``cheats/`` folders runs, in this process, on
``--draws`` fresh draws of every row-by-row test's inputs (the harness's own ``draw_inputs``
on the trusted automaton); a row is caught when its token is forbidden, or judged and not the
token its uniform selects (the oracle's rule). Rows are drawn independently, so with a share
``r`` of the rows caught and ``n`` rows per run a test misses the solution with probability
``(1 - r) ** n``; the tests draw independently, so the suite's miss is the product. The
decode tests, the chi-square test and the exact check of every ``mask`` (which alone catches
a wrong mask on any row it differs) are left out: the figures are bounds. The honest
solutions are the control: they must be caught on no row.

    .venv/bin/python -m benchmarks.grammar_power --draws 20 --json benchmarks/grammar_power.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random

import numpy as np

from grader.bank import PROBLEMS_DIR, problem_read
from grader.harnesses.base import oracle_load
from grader.harnesses.engine_grammar import FSM_FIELDS, allowed_rows, compiled, draw_inputs
from grader.harnesses.engine_run import reference_class

FOLDER = PROBLEMS_DIR / "grammar-sampler"


def caught_share(solution, case: dict, draws: int, seed: int) -> tuple[int, int]:
    """(rows caught, rows run) over ``draws`` draws of one test's inputs."""
    _, fsm = compiled(case)
    expected = oracle_load((FOLDER / "oracle.py").read_text(), ("sample_expected",))
    rng = random.Random(seed)
    caught = rows = 0
    for _ in range(draws):
        logits, states, params = draw_inputs(case, fsm, rng, int(case["rows"]))
        # a copy: a cheat rewrites the automaton it is handed, never the judge's
        theirs = dataclasses.replace(fsm, **{f: getattr(fsm, f).clone() for f in FSM_FIELDS})
        tokens = solution.sample(logits, theirs, states, params[0].float(), params[1]).numpy()
        allowed = allowed_rows(fsm, states.numpy())
        want, judged = expected["sample_expected"](
            logits.numpy(), allowed, params[0].numpy(), params[1].numpy()
        )
        forbidden = ~allowed[np.arange(len(tokens)), tokens]
        caught += int((forbidden | (judged & (tokens != want))).sum())
        rows += len(tokens)
    return caught, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    problem = problem_read(FOLDER)
    spec = problem.as_spec()
    cases = [c for c in [*spec.tests, spec.benchmark] if c.get("mode") == "sample"]
    files = ["reference.py", *sorted(f"{p.parent.name}/{p.name}" for p in FOLDER.glob("*/*.py"))]
    results = []
    print(f"{'solution':38} " + " ".join(f"{c['name'][:22]:>22}" for c in cases) + "   suite")
    for name in files:
        solution = reference_class((FOLDER / name).read_text(), problem.entry_point)()
        per_test, suite = {}, 0.0
        for index, case in enumerate(cases):
            caught, rows = caught_share(solution, case, args.draws, seed=index)
            share = caught / rows
            n = int(case["rows"])
            log10_miss = -math.inf if share >= 1 else n * math.log10(1 - share)
            per_test[case["name"]] = {"share_caught": share, "log10_miss": log10_miss}
            if case is not spec.benchmark:
                suite += log10_miss
        results.append({"solution": name, "tests": per_test, "suite_log10_miss": suite})
        cells = " ".join(
            f"{t['share_caught']:>9.3f} ({t['log10_miss']:>8.1f})" for t in per_test.values()
        )
        print(f"{name:38} {cells}   {suite:.1f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"draws": args.draws, "solutions": results}, out, indent=1, default=str)


if __name__ == "__main__":
    main()
