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
    """A wrong sampler, as the distribution it draws each row from by the inverse-CDF rule (a
    token it takes whatever the uniform is a one-hot row)."""

    name: str
    distribution: Callable[[np.ndarray, np.ndarray], np.ndarray]


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


def one_hot(tokens: np.ndarray, vocab: int) -> np.ndarray:
    rows = np.zeros((len(tokens), vocab))
    rows[np.arange(len(tokens)), tokens] = 1.0
    return rows


def argmax_everywhere(logits: np.ndarray, settings: np.ndarray) -> np.ndarray:
    return one_hot(np.argmax(logits, axis=1), logits.shape[1])


def greedy_last_argmax(logits: np.ndarray, settings: np.ndarray) -> np.ndarray:
    probs = ORACLE["target_probs"](logits, settings)[0]
    greedy = settings[:, TEMPERATURE] == 0
    last = logits.shape[1] - 1 - np.argmax(logits[:, ::-1], axis=1)
    probs[greedy] = one_hot(last[greedy], logits.shape[1])
    return probs


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
    Wrong("argmax of every row", argmax_everywhere),
    Wrong("greedy rows take the last argmax", greedy_last_argmax),
]


def normalised_cdf(probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs, axis=-1)
    return cdf / cdf[..., -1:]


def caught_per_row(logits: np.ndarray, settings: np.ndarray, wrong: Wrong) -> np.ndarray:
    """Per row: the measure of uniforms where the grader judges the row and the wrong
    sampler's token is none of the tokens the row may take (under every number of kept tokens
    float32 rounding allows)."""
    x, descending, count, low, high, tied = ORACLE["kept_counts"](logits, settings)
    keeping = ORACLE["_probs_keeping"]
    rows, vocab = logits.shape
    greedy = settings[:, TEMPERATURE] == 0
    wrong_probs = wrong.distribution(logits, settings)
    caught = np.zeros(rows)
    # a greedy row is judged whatever its uniform: its token is the first argmax
    caught[greedy] = (np.argmax(wrong_probs, axis=1) != np.argmax(logits, axis=1))[greedy]
    for row in np.flatnonzero(~greedy & ~tied):
        one = slice(row, row + 1)
        allowed = [
            normalised_cdf(keeping(x[one], descending[one], np.array([kept]))[0])
            for kept in range(low[row], high[row] + 1)
        ]
        exact = normalised_cdf(keeping(x[one], descending[one], count[one])[0])
        wrong_cdf = normalised_cdf(wrong_probs[row])
        edges = np.unique(np.concatenate([[0.0, 1.0], wrong_cdf, exact, *allowed]))
        middle = (edges[:-1] + edges[1:]) / 2
        token = np.searchsorted(wrong_cdf, middle, side="right")
        matched = np.zeros(len(middle), dtype=bool)
        for cdf in allowed:
            matched |= np.searchsorted(cdf, middle, side="right") == token
        # uniforms within the margin of a bin edge of the exact distribution are not judged
        position = np.searchsorted(exact, middle)
        lower = np.where(position > 0, exact[np.maximum(position - 1, 0)], 0.0)
        upper = exact[np.minimum(position, vocab - 1)]
        start = np.maximum(edges[:-1], lower + CDF_MARGIN)
        stop = np.minimum(edges[1:], upper - CDF_MARGIN)
        caught[row] = float((np.maximum(stop - start, 0.0) * ~matched).sum())
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
