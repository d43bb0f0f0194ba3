"""The coding problems that ship in the bank: one folder per problem under grader/problems/.

A folder holds ``problem.yaml`` (harness kind, limits, tolerance, tests, benchmark),
``statement.md``, ``editorial.md`` (shown to a user once they have an accepted submission;
published problems must have one), ``starter.py``, ``reference.py`` (the solution scores are
relative to),
``oracle.py`` (trusted: expected outputs, and for CPU kinds the input generator), for kernel
problems ``inputs.py`` (public: how inputs are drawn and called, run by both halves), and
``wrong/*.py`` (realistic wrong solutions the bank tests must reject).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.harnesses.contract import ProblemSpec, problem_spec_from
from grader.yaml_text import yaml_load

PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"
SPEC_KEYS = (
    "limits",
    "tolerance",
    "tests",
    "benchmark",
    "speed_of_light_bytes_per_s",
    # A Run's inputs written by the candidate (function problems): how many and how large.
    "custom_inputs",
    # The interview's loops pick a problem whose difficulty fits the loop's level and whose
    # expected minutes fit the round (interview.services.coding_problems_fitting).
    "difficulty",
    "expected_min",
)
# A problem's difficulty, easiest first: what /problems/ shows and what a loop's level allows.
DIFFICULTIES = ("easy", "medium", "hard")


# The folders of solutions a problem must not accept: realistic mistakes and attacks.
CHECK_FOLDERS = ("wrong", "cheats")
# What an author edits of a problem: a version's snapshot, and what its content hash covers.
CONTENT_FIELDS = (
    "slug",
    "title",
    "statement_md",
    "editorial_md",
    "harness",
    "entry_point",
    "queue",
    "starter_code",
    "reference_code",
    "oracle_code",
    "inputs_code",
    "spec",
    "checks",
    "published",
)


@dataclass(frozen=True)
class BankProblem:
    """One problem folder, read."""

    slug: str
    title: str
    statement_md: str
    editorial_md: str
    harness: str
    entry_point: str
    queue: str
    starter_code: str
    reference_code: str
    oracle_code: str
    inputs_code: str
    spec: dict[str, Any]
    published: bool
    checks: tuple[dict[str, str], ...] = ()

    def as_spec(self) -> ProblemSpec:
        return problem_spec_from(self)


def problem_content_errors(snapshot: dict[str, Any]) -> list[str]:
    """What is wrong with a problem's content (a folder read, or an author's edit), as the
    loader and the admin's publish check say it; empty when nothing is.

    A problem needs a difficulty the loops understand and a positive expected time; a
    published one also needs an editorial (shown after a user's first accepted submission).
    """
    spec = snapshot.get("spec") or {}
    errors = []
    if "level" in spec:
        errors.append(
            "spec: 'level' is not a problem's field: give 'difficulty' (easy, medium or hard); "
            "a loop's level decides which difficulties it draws"
        )
    difficulty = spec.get("difficulty")
    if difficulty not in DIFFICULTIES:
        errors.append(
            f"spec: difficulty must be one of {', '.join(DIFFICULTIES)} (got {difficulty!r})"
        )
    minutes = spec.get("expected_min")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        errors.append(
            "spec: expected_min must be a positive whole number of minutes, how long a "
            f"candidate needs (got {minutes!r})"
        )
    custom = spec.get("custom_inputs")
    if custom is not None and not (
        isinstance(custom, dict)
        and set(custom) == {"max_inputs", "max_values"}
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in custom.values())
    ):
        errors.append(
            "spec: custom_inputs is {max_inputs: N, max_values: N} with positive whole numbers"
        )
    if snapshot.get("published") and not (snapshot.get("editorial_md") or "").strip():
        errors.append(
            "editorial: a published problem needs an editorial (editorial.md: the idea, the "
            "pitfalls, the complexity, what the reference does and where it could be faster)"
        )
    return errors


def problem_read(folder: Path) -> BankProblem:
    """Read one problem folder; raises ValueError naming the folder when its content is wrong."""
    meta = yaml_load((folder / "problem.yaml").read_text())
    if meta["slug"] != folder.name:
        raise ValueError(f"{folder}: slug {meta['slug']!r} differs from the folder name")
    editorial = folder / "editorial.md"
    problem = BankProblem(
        slug=meta["slug"],
        title=meta["title"],
        statement_md=(folder / "statement.md").read_text(),
        editorial_md=editorial.read_text() if editorial.exists() else "",
        harness=meta["harness"],
        entry_point=meta["entry_point"],
        queue=meta.get("queue", "cpu"),
        starter_code=(folder / "starter.py").read_text(),
        reference_code=(folder / "reference.py").read_text(),
        oracle_code=(folder / "oracle.py").read_text(),
        inputs_code=(folder / "inputs.py").read_text() if (folder / "inputs.py").exists() else "",
        # "level" is kept only to be refused by name (problem_content_errors).
        spec={key: meta[key] for key in (*SPEC_KEYS, "level") if key in meta},
        published=bool(meta.get("published", False)),
        checks=tuple(
            {"name": str(path.relative_to(folder)), "code": path.read_text()}
            for kind in CHECK_FOLDERS
            for path in sorted((folder / kind).glob("*.py"))
        ),
    )
    errors = problem_content_errors(problem_snapshot(problem))
    if errors:
        raise ValueError(f"{folder}: " + "; ".join(errors))
    return problem


def bank_problems() -> list[BankProblem]:
    """Every problem folder of the bank, by slug."""
    return [
        problem_read(folder)
        for folder in sorted(PROBLEMS_DIR.iterdir())
        if (folder / "problem.yaml").exists()
    ]


def problem_snapshot(problem) -> dict[str, Any]:
    """Everything an author edits of a problem (a row or a BankProblem), as one mapping."""
    snapshot = {name: getattr(problem, name) for name in CONTENT_FIELDS}
    snapshot["checks"] = [dict(check) for check in snapshot["checks"]]
    return snapshot


def problem_apply(problem, snapshot: dict[str, Any]) -> None:
    """Set a (possibly unsaved) row's fields from a snapshot (the inverse of problem_snapshot)."""
    for name in CONTENT_FIELDS:
        setattr(problem, name, snapshot[name])


def problem_validation_hash(problem) -> str:
    """The hash a validation run counts for: the content without the published flag, so
    publishing what was validated keeps the run valid, and any other edit voids it."""
    from grader.versions import content_hash

    return content_hash({k: v for k, v in problem_snapshot(problem).items() if k != "published"})


def problems_load() -> int:
    """Add new shipped problems and update those nobody edited since they were loaded; returns
    how many the bank holds.

    The same rule as the questions (``interview.question_bank.questions_load_report``): a row
    whose content no longer hashes to ``shipped_hash`` was edited by an author, and a row made
    in the admin has none; both are kept as they are. Each change records a version.
    """
    return len(problems_load_report()[0])


def problems_load_report() -> tuple[list[str], list[str]]:
    """Load the shipped problems; returns (slugs in the bank, slugs kept for their authors)."""
    from django.db import transaction

    from grader.models import Problem
    from grader.versions import content_hash, version_record

    problems = bank_problems()
    kept: list[str] = []
    with transaction.atomic():
        rows = {p.slug: p for p in Problem.objects.select_for_update()}
        for shipped in problems:
            snapshot = problem_snapshot(shipped)
            digest = content_hash(snapshot)
            row = rows.get(shipped.slug)
            if row is not None:
                current = content_hash(problem_snapshot(row))
                if current == digest:
                    if row.shipped_hash != digest:
                        row.shipped_hash = digest
                        row.save(update_fields=["shipped_hash"])
                    continue
                if current != row.shipped_hash:
                    kept.append(row.slug)
                    continue
            row = row or Problem()
            problem_apply(row, snapshot)
            row.shipped_hash = digest
            row.save()
            version_record(row, snapshot, note="loaded from the bank")
    return [p.slug for p in problems], kept
