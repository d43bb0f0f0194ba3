"""The coding problems that ship in the bank: one folder per problem under grader/problems/.

A folder holds ``problem.yaml`` (harness kind, limits, tolerance, tests, benchmark),
``statement.md``, ``starter.py``, ``reference.py`` (the solution scores are relative to),
``oracle.py`` (trusted: expected outputs, and for CPU kinds the input generator), for kernel
problems ``inputs.py`` (public: how inputs are drawn and called, run by both halves), and
``wrong/*.py`` (realistic wrong solutions the bank tests must reject).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grader.harnesses.contract import ProblemSpec, problem_spec_from

PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"
SPEC_KEYS = (
    "limits",
    "tolerance",
    "tests",
    "benchmark",
    "speed_of_light_bytes_per_s",
    # The interview's loops pick a problem that fits the level and the round's minutes.
    "level",
    "expected_min",
)


@dataclass(frozen=True)
class BankProblem:
    """One problem folder, read."""

    slug: str
    title: str
    statement_md: str
    harness: str
    entry_point: str
    queue: str
    starter_code: str
    reference_code: str
    oracle_code: str
    inputs_code: str
    spec: dict[str, Any]
    published: bool

    def as_spec(self) -> ProblemSpec:
        return problem_spec_from(self)


def problem_read(folder: Path) -> BankProblem:
    """Read one problem folder."""
    meta = yaml.safe_load((folder / "problem.yaml").read_text())
    if meta["slug"] != folder.name:
        raise ValueError(f"{folder}: slug {meta['slug']!r} differs from the folder name")
    return BankProblem(
        slug=meta["slug"],
        title=meta["title"],
        statement_md=(folder / "statement.md").read_text(),
        harness=meta["harness"],
        entry_point=meta["entry_point"],
        queue=meta.get("queue", "cpu"),
        starter_code=(folder / "starter.py").read_text(),
        reference_code=(folder / "reference.py").read_text(),
        oracle_code=(folder / "oracle.py").read_text(),
        inputs_code=(folder / "inputs.py").read_text() if (folder / "inputs.py").exists() else "",
        spec={key: meta[key] for key in SPEC_KEYS if key in meta},
        published=bool(meta.get("published", False)),
    )


def bank_problems() -> list[BankProblem]:
    """Every problem folder of the bank, by slug."""
    return [
        problem_read(folder)
        for folder in sorted(PROBLEMS_DIR.iterdir())
        if (folder / "problem.yaml").exists()
    ]


def problems_load() -> int:
    """Create or update every shipped problem from its folder; returns how many were loaded."""
    from grader.models import Problem

    problems = bank_problems()
    for problem in problems:
        Problem.objects.update_or_create(
            slug=problem.slug,
            defaults={
                "title": problem.title,
                "statement_md": problem.statement_md,
                "harness": problem.harness,
                "entry_point": problem.entry_point,
                "queue": problem.queue,
                "starter_code": problem.starter_code,
                "reference_code": problem.reference_code,
                "oracle_code": problem.oracle_code,
                "inputs_code": problem.inputs_code,
                "spec": problem.spec,
                "published": problem.published,
            },
        )
    return len(problems)
