"""Round 6 of the answer judge (issue 17): the judge's agreement by kind on the four tuning sets
with the cross-encoder claim reader (reader_model.py) in the loop, beside the judge as it is.

    python benchmarks/claim_model/judge_with_reader.py [--json benchmarks/claim_model/judge_with_reader.json]

Each answer unit at least FLOOR similar to a point (by the judge's own rules: polarity,
contrasts, numbers) is read against the point's TOP closest statements, and its similarity moves
WEIGHT of the way toward what the reader says (the threshold plus SPAN per unit of probability
above 0.5); near misses, exclusivity, keywords and vacuity stay the judge's. Each setting is a
row: "off" is the judge as shipped. The held-out set is not read here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reader_model import stated  # noqa: E402

from interview import claims, rubric  # noqa: E402
from interview.judging import agreement_by_kind, answer_cases_load, target_judge  # noqa: E402

SETS = ("tuning.yaml", "tuning2.yaml", "tuning3.yaml", "tuning4.yaml")
FLOOR, TOP, SPAN = 0.3, 3, 0.4
# (name, WEIGHT, near-miss margin): the reader replacing cosine, with and without the judge's
# near-miss rivals, and halfway between reader and cosine.
SETTINGS = (("off", 0.0, rubric.NEAR_MISS_MARGIN), ("reader", 1.0, rubric.NEAR_MISS_MARGIN),
            ("reader, no near-miss rivals", 1.0, -1.0), ("half reader", 0.5, rubric.NEAR_MISS_MARGIN),
            ("veto on lookalikes", "veto", rubric.NEAR_MISS_MARGIN))  # fmt: skip
# The veto: a claim that shares at least OVERLAP of its content words with a statement (a
# lookalike: the regime where cosine cannot tell a claim from its swap) and that the reader
# gives under VETO_BELOW is no evidence for that statement's point; other claims are the judge's.
OVERLAP, VETO_BELOW = 0.5, 0.2


def content_words(text: str) -> set[str]:
    return {w for w in claims.words(text) if len(w) > 2}


def with_reader(weight: float):
    """rubric._similarities, its usable similarities moved toward the reader's verdicts."""
    plain = rubric._similarities

    def similarities(point, units: Sequence, vectors: np.ndarray, misconception: bool = False):
        closest, usable = plain(point, units, vectors, misconception)
        if misconception or not weight:
            return closest, usable
        refs = rubric._references(point)
        if weight == "veto":
            return closest, vetoed(refs, units, usable)
        pairs, owners = [], []
        for index, unit in enumerate(units):
            if usable[index] < FLOOR:
                continue
            eligible = rubric._eligible(unit, refs)
            cosines = np.where(eligible, refs.statement_vectors @ vectors[index], -2.0)
            for statement in np.argsort(-cosines)[: min(TOP, int(eligible.sum()))]:
                pairs.append((refs.statements[statement], unit.text))
                owners.append(index)
        read = np.full(len(units), -1.0)
        for index, probability in zip(owners, stated(pairs), strict=True):
            read[index] = max(read[index], float(probability))
        moved = usable.copy()
        for index in set(owners):
            verdict = rubric.DEFAULT_THRESHOLD + SPAN * (read[index] - 0.5)
            moved[index] = usable[index] + weight * (verdict - usable[index])
        return closest, moved

    return similarities


def vetoed(refs, units: Sequence, usable: np.ndarray) -> np.ndarray:
    pairs, owners = [], []
    for index, unit in enumerate(units):
        if usable[index] < rubric.DEFAULT_THRESHOLD - rubric.CONFIDENCE_BAND:
            continue
        words = content_words(unit.text)
        for statement in refs.statements:
            theirs = content_words(statement)
            if words and theirs and len(words & theirs) / len(words | theirs) >= OVERLAP:
                pairs.append((statement, unit.text))
                owners.append(index)
    if not pairs:
        return usable
    best = {}
    for index, probability in zip(owners, stated(pairs), strict=True):
        best[index] = max(best.get(index, 0.0), float(probability))
    out = usable.copy()
    for index, probability in best.items():
        if probability < VETO_BELOW:
            out[index] = -1.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", nargs="*", help="settings to run, by name")
    args = parser.parse_args()
    cases = {name: answer_cases_load(ROOT / "tests/interview/answer_cases" / name) for name in SETS}
    plain, margin = rubric._similarities, rubric.NEAR_MISS_MARGIN
    report = {}
    print(
        f"{'setting':<30}{'vacuous':>10}{'wrong':>10}{'paraphrase':>12}{'honest':>10}{'s/answer':>10}"
    )
    chosen = [s for s in SETTINGS if not args.only or s[0] in args.only]
    for name, weight, near_miss_margin in chosen:
        rubric._similarities, rubric.NEAR_MISS_MARGIN = with_reader(weight), near_miss_margin
        started, totals = time.perf_counter(), {}
        for set_cases in cases.values():
            verdicts = [target_judge(c.target, c.text) for c in set_cases]
            for kind, row in agreement_by_kind(set_cases, verdicts).items():
                agreed, count = totals.get(kind, (0, 0))
                totals[kind] = (agreed + row.agreed, count + row.cases)
        seconds = (time.perf_counter() - started) / sum(len(c) for c in cases.values())
        rubric._similarities, rubric.NEAR_MISS_MARGIN = plain, margin
        cells = [
            f"{totals[k][0]}/{totals[k][1]}" for k in ("vacuous", "wrong", "paraphrase", "honest")
        ]
        print(f"{name:<30}{cells[0]:>10}{cells[1]:>10}{cells[2]:>12}{cells[3]:>10}{seconds:>10.2f}")
        report[name] = {k: {"agreed": a, "cases": n} for k, (a, n) in totals.items()} | {
            "seconds_per_answer": round(seconds, 3)
        }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
