"""Agreement of the written-answer judge with the held-out labels of issue 17
(tests/interview/answer_cases/heldout2.yaml), by kind, through the judge's public command only,
so the number does not depend on the judge's own tuning code:

    .venv/bin/python benchmarks/heldout_agreement.py [--json var/bench/heldout_agreement.json]
    .venv/bin/python benchmarks/heldout_agreement.py --results graded.jsonl

The first form writes the cases as the JSONL that `manage.py grade_answer --batch` reads and
runs it once; the second reads the JSONL such a run printed (one result per case, in order).
A case agrees when the result's `passed` equals its label; a vacuous case must also score at
most 0.25 (issue 17's bar), which the table reports on its own. `--cases` grades another set.

benchmarks/heldout_before.jsonl is the judge before issue 17 (interview.rubric.grade_answer at
cd5821f, in process, passing at 0.6) on the first held-out set, now the fifth tuning set:
`--cases tests/interview/answer_cases/tuning5.yaml --results benchmarks/heldout_before.jsonl`
reprints its table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CASES_FILE = REPO / "tests" / "interview" / "answer_cases" / "heldout2.yaml"
KINDS = ("vacuous", "wrong", "paraphrase", "honest")
# Issue 17: a vacuous answer made of topic words scores at most this.
VACUOUS_MAX_SCORE = 0.25


def cases_load(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def batch_line(case: Mapping[str, Any]) -> str:
    """One case as an input line of `grade_answer --batch`."""
    target = case["target"]
    if "question" in target:
        request = {"question": target["question"]}
    elif "section" in target:
        request = {"design": target["design"], "section": target["section"]}
    else:
        request = {"design": target["design"], "follow_up": target["follow_up"]}
    return json.dumps(request | {"text": case["text"]}, ensure_ascii=False)


def agreement_by_kind(
    cases: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per kind: cases, agreeing cases, the share, and (vacuous) how many scored at most 0.25."""
    if len(cases) != len(results):
        raise ValueError(f"{len(cases)} cases but {len(results)} results")
    table: dict[str, dict[str, Any]] = {}
    for kind in (*KINDS, "all"):
        pairs = [(c, r) for c, r in zip(cases, results, strict=True) if kind in ("all", c["kind"])]
        agreeing = sum(bool(r["passed"]) == (c["expected"] == "pass") for c, r in pairs)
        row = {"cases": len(pairs), "agree": agreeing, "share": agreeing / len(pairs)}
        if kind == "vacuous":
            row["at_most_0.25"] = sum(r["score"] <= VACUOUS_MAX_SCORE for _, r in pairs)
        table[kind] = row
    return table


def disagreements(
    cases: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> list[str]:
    """One line per case the judge got wrong: kind, target, label, the judge's score."""
    return [
        f"{c['kind']:<10} {'/'.join(c['target'].values()):<48} expected {c['expected']}, "
        f"got {'pass' if r['passed'] else 'fail'} at {r['score']:.2f}: {c['text'][:60]}…"
        for c, r in zip(cases, results, strict=True)
        if bool(r["passed"]) != (c["expected"] == "pass")
    ]


def results_from_command(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as batch:
        batch.write("".join(batch_line(case) + "\n" for case in cases))
        batch.flush()
        output = subprocess.run(
            [sys.executable, "manage.py", "grade_answer", "--batch", batch.name],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=CASES_FILE)
    parser.add_argument("--results", type=Path, help="JSONL printed by grade_answer --batch")
    parser.add_argument("--json", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    cases = cases_load(args.cases)
    if args.results:
        lines = args.results.read_text(encoding="utf-8").splitlines()
        results = [json.loads(line) for line in lines if line.strip()]
    else:
        results = results_from_command(cases)
    table = agreement_by_kind(cases, results)
    for kind, row in table.items():
        extra = f", {row['at_most_0.25']} at most 0.25" if "at_most_0.25" in row else ""
        print(f"{kind:<10} {row['agree']:>3}/{row['cases']:<3} {row['share']:.1%}{extra}")
    for line in disagreements(cases, results):
        print(" ", line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
