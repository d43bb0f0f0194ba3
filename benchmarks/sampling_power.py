"""How surely the sampling problems' tests reject a wrong answer.

batched-sampler: exact over the uniforms, averaged over draws of each test's inputs.

Each wrong sampler is a rule for the token a uniform selects. For one row the grader judges,
the chance it is caught is the measure of the uniforms where its token differs from the rule's
token, leaving out the uniforms within the oracle's margin of a bin edge (they are not judged)
and the rows whose filters are within rounding of a threshold. That measure is computed
exactly from the two cumulative distributions; a test misses the sampler when every judged row
does, so P(miss) is the mean over input draws of the product over rows of (1 - caught). Draws
of different tests are independent, so the suite's P(miss) is the product of the tests'.

The engine test is left out (its logits come from the model), so the figures are bounds.

spec-verifier: each wrong verifier (the problem's `wrong/` solutions, and the honest float32
one as a control) runs on draws of every row-by-row test; a test misses it when no judged row
differs from the rule. Rows are drawn independently, so with a share r of judged rows wrong and
n judged rows per run, P(miss) = (1 - r)^n.

    .venv/bin/python -m benchmarks.sampling_power --draws 100 --json benchmarks/sampling_power.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable

import numpy as np

from grader.bank import PROBLEMS_DIR, problem_read
from grader.harnesses.base import oracle_load
from grader.harnesses.engine_sampler import batch_inputs

ORACLE = oracle_load(
    (PROBLEMS_DIR / "batched-sampler" / "oracle.py").read_text(), ("target_probs",)
)
CDF_MARGIN = ORACLE["CDF_MARGIN"]


@dataclasses.dataclass(frozen=True)
class Wrong:
    """A wrong sampler: its distribution per row (None: it does not sample from one) or the
    token it takes whatever the uniform."""

    name: str
    distribution: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    fixed_token: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    #: the fixed token is taken on greedy rows only (the others sample rightly)
    greedy_only: bool = False


TEMPERATURE, TOP_K, TOP_P, MIN_P = range(4)


def using(column: int, value: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """The distribution of a sampler that uses ``value(settings)`` for one setting."""

    def distribution(logits: np.ndarray, settings: np.ndarray) -> np.ndarray:
        changed = settings.copy()
        changed[:, column] = value(settings)
        return ORACLE["target_probs"](logits, changed)[0]

    return distribution


def unfiltered(s: np.ndarray) -> np.ndarray:
    return (s[:, TOP_K] == 0) & (s[:, TOP_P] >= 1) & (s[:, MIN_P] == 0)


def top_k_without_ties(logits: np.ndarray, settings: np.ndarray) -> np.ndarray:
    probs = ORACLE["target_probs"](logits, settings)[0]
    vocab = probs.shape[1]
    for row, k in enumerate(settings[:, TOP_K].astype(int)):
        if 0 < k < vocab:
            keep = np.argsort(-probs[row], kind="stable")[:k]
            kept = np.zeros(vocab, dtype=bool)
            kept[keep] = True
            probs[row] = np.where(kept, probs[row], 0.0)
    return probs


def last_argmax(logits: np.ndarray, settings: np.ndarray) -> np.ndarray:
    return logits.shape[1] - 1 - np.argmax(logits[:, ::-1], axis=1)


WRONG = [
    Wrong(
        "forgets the temperature (unfiltered rows)",
        using(TEMPERATURE, lambda s: np.where(unfiltered(s) & (s[:, 0] > 0), 1.0, s[:, 0])),
    ),
    Wrong("temperature 2% too high", using(TEMPERATURE, lambda s: s[:, TEMPERATURE] * 1.02)),
    Wrong("drops top-k", using(TOP_K, lambda s: 0.0)),
    Wrong("drops top-p", using(TOP_P, lambda s: 1.0)),
    Wrong(
        "drops top-p >= 0.99",
        using(TOP_P, lambda s: np.where(s[:, TOP_P] >= 0.99, 1.0, s[:, TOP_P])),
    ),
    Wrong("drops min-p", using(MIN_P, lambda s: 0.0)),
    Wrong(
        "drops min-p under top-k",
        using(MIN_P, lambda s: np.where(s[:, TOP_K] > 0, 0.0, s[:, MIN_P])),
    ),
    Wrong("top-k keeps exactly k (drops tied tokens)", top_k_without_ties),
    Wrong("argmax of every row", fixed_token=lambda logits, settings: np.argmax(logits, axis=1)),
    Wrong("greedy rows take the last argmax", fixed_token=last_argmax, greedy_only=True),
]


def caught_per_row(logits: np.ndarray, settings: np.ndarray, wrong: Wrong) -> np.ndarray:
    """Per row: the measure of uniforms where the wrong token differs and the row is judged."""
    right, unsure = ORACLE["target_probs"](logits, settings)
    rows, vocab = right.shape
    greedy = settings[:, TEMPERATURE] == 0
    caught = np.zeros(rows)
    cdf_right = np.cumsum(right, axis=1)
    cdf_right /= cdf_right[:, -1:]
    if wrong.fixed_token is not None:
        token = wrong.fixed_token(logits, settings)
        first = np.argmax(logits, axis=1)
        for row in range(rows):
            if greedy[row]:
                caught[row] = float(token[row] != first[row])
                continue
            if unsure[row] or wrong.greedy_only:
                continue
            same = right[row, token[row]] + 2 * CDF_MARGIN * (right[row] > 0).sum()
            caught[row] = max(0.0, 1.0 - same)
        return caught
    wrong_probs = wrong.distribution(logits, settings)
    cdf_wrong = np.cumsum(wrong_probs, axis=1)
    cdf_wrong /= cdf_wrong[:, -1:]
    for row in np.flatnonzero(~greedy & ~unsure):
        edges = np.unique(np.concatenate([[0.0, 1.0], cdf_right[row], cdf_wrong[row]]))
        middle = (edges[:-1] + edges[1:]) / 2
        differ = np.searchsorted(cdf_right[row], middle, side="right") != np.searchsorted(
            cdf_wrong[row], middle, side="right"
        )
        # uniforms within the margin of one of the rule's bin edges are not judged
        position = np.searchsorted(cdf_right[row], middle)
        lower = np.where(position > 0, cdf_right[row][np.maximum(position - 1, 0)], 0.0)
        upper = cdf_right[row][np.minimum(position, vocab - 1)]
        start = np.maximum(edges[:-1], lower + CDF_MARGIN)
        stop = np.minimum(edges[1:], upper - CDF_MARGIN)
        caught[row] = float((np.maximum(stop - start, 0.0) * differ).sum())
    return caught


def log10_miss(case: dict, wrong: Wrong, draws: int, batches: int = 1) -> float:
    """log10 of P(one run of ``case`` misses ``wrong``), over ``draws`` draws of its inputs."""
    misses = []
    for seed in range(draws):
        log_miss = 0.0
        for batch in range(batches):
            logits, packed = batch_inputs(case, seed * batches + batch)
            if case.get("mode") == "chisq":
                logits, packed = logits[:1], packed[:, :1]
                repeat = int(case["rows"])
            else:
                repeat = 1
            caught = caught_per_row(logits.numpy(), packed[:4].T.numpy(), wrong)
            with np.errstate(divide="ignore"):  # a row caught for sure: log(0)
                log_miss += repeat * np.log1p(-np.minimum(caught, 1.0)).sum()
        misses.append(log_miss)
    top = max(misses)
    mean = top + math.log(np.mean(np.exp(np.array(misses) - top))) if top > -np.inf else -np.inf
    return mean / math.log(10)


def verifier_power(draws: int) -> dict[str, dict[str, float]]:
    """log10 P(miss) of the row-by-row tests, per wrong verifier, and its share of wrong rows."""
    import torch

    from grader.harnesses.engine_verifier import verify_inputs

    folder = PROBLEMS_DIR / "spec-verifier"
    spec = problem_read(folder).as_spec()
    oracle = oracle_load(spec.oracle_code, ("verify_expected",))
    cases = [case for case in spec.tests if case.get("mode") != "engine"]
    results = {}
    for path in [*sorted(folder.glob("wrong/*.py")), folder / "solutions" / "float32_ratio.py"]:
        namespace: dict = {}
        exec(path.read_text(), namespace)
        verifier = namespace[spec.entry_point]()
        log_miss, wrong_rows, judged_rows = 0.0, 0, 0
        for case in cases:
            case_wrong = case_judged = 0
            for seed in range(draws):
                inputs = verify_inputs(case, seed)
                with torch.no_grad():
                    tokens, accepted = verifier.verify(*inputs)
                want, want_accepted, ambiguous = oracle["verify_expected"](*inputs)
                differ = (tokens.numpy() != want).any(axis=1) | (accepted.numpy() != want_accepted)
                case_wrong += int((differ & ~ambiguous).sum())
                case_judged += int((~ambiguous).sum())
            share = case_wrong / max(case_judged, 1)
            log_miss += case_judged / draws * math.log10(1 - share) if share < 1 else -math.inf
            wrong_rows, judged_rows = wrong_rows + case_wrong, judged_rows + case_judged
        name = str(path.relative_to(folder))
        results[name] = {"tests_log10_miss": log_miss, "wrong_share": wrong_rows / judged_rows}
        print(
            f"{name:45s} tests miss 1e{log_miss:8.1f}   "
            f"{wrong_rows} of {judged_rows} judged rows wrong",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    spec = problem_read(PROBLEMS_DIR / "batched-sampler").as_spec()
    cases = [case for case in spec.tests if case.get("mode") != "engine"]
    benchmark = spec.benchmark
    sampler = {}
    started = time.monotonic()
    for wrong in WRONG:
        per_test = {case["name"]: log10_miss(case, wrong, args.draws) for case in cases}
        timed = log10_miss(benchmark, wrong, args.draws, int(benchmark.get("calls", 1)))
        suite = sum(per_test.values())
        sampler[wrong.name] = {
            "tests_log10_miss": suite,
            "per_test": per_test,
            "timed_log10_miss": timed,
        }
        print(
            f"{wrong.name:45s} tests miss 1e{suite:8.1f}   one timed exchange misses "
            f"1e{timed:7.2f}   ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    verifier = verifier_power(args.draws)
    if args.json:
        with open(args.json, "w") as out:
            report = {"draws": args.draws, "sampler": sampler, "verifier": verifier}
            json.dump(report, out, indent=1)


if __name__ == "__main__":
    main()
