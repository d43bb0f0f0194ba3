"""``manage.py grade --problem SLUG (FILE | --reference) [--run [--input JSON]] [--json]``:
grade synchronously, or with ``--run`` try the public examples only (the site's Run)."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from engine.hardware import detect_hardware
from grader.bank import PROBLEMS_DIR, problem_read
from grader.grading import grade, run_examples, tests_table
from grader.harnesses import harness_get
from grader.harnesses.contract import ProblemSpec, Verdict
from grader.harnesses.timing import device_state
from grader.services import SubmissionRejected, code_validate


def _problem_spec(slug: str) -> ProblemSpec:
    """The problem as stored in the database, else as shipped in the bank folder."""
    from django.db import DatabaseError

    from grader.models import Problem

    try:
        return Problem.objects.get(slug=slug).as_spec()
    except (Problem.DoesNotExist, DatabaseError):
        folder = PROBLEMS_DIR / slug
        if not (folder / "problem.yaml").exists():
            raise CommandError(f"no problem {slug!r} in the database or the bank") from None
        return problem_read(folder).as_spec()


class Command(BaseCommand):
    help = (
        "Grade a solution file (or the problem's reference) through the sandbox, without a "
        "worker; prints the per-test table and exits 0 only when accepted."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--problem", required=True, help="problem slug, e.g. cpu-softmax")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("file", nargs="?", help="the solution's .py file")
        source.add_argument("--reference", action="store_true", help="grade the reference")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--run",
            action="store_true",
            help="only the public examples, no reference and no timing (the site's Run)",
        )
        parser.add_argument(
            "--input",
            action="append",
            default=[],
            help='with --run: an input of your own, {"values": [[...]], "dtype": "float64"} '
            "(function problems; repeat for more)",
        )

    def handle(self, *args, problem: str, file: str | None, reference: bool, **options) -> None:
        spec = _problem_spec(problem)
        if reference:
            code = spec.reference_code
        else:
            try:
                code = Path(file).read_bytes().decode("utf-8", errors="surrogateescape")
                code_validate(code, spec.limits.source_bytes)
            except (OSError, SubmissionRejected) as error:
                raise CommandError(f"{file}: {error}") from None
        hardware = detect_hardware().as_dict() | {"device_state": device_state()}
        if options["run"]:
            try:
                inputs = [json.loads(text) for text in options["input"]]
                harness_get(spec.harness).custom_cases(spec, inputs)
            except ValueError as error:  # a JSONDecodeError is one too
                raise CommandError(f"--input: {error}") from None
            report = run_examples(
                spec, code, seed=secrets.randbits(62), hardware=hardware, custom_inputs=inputs
            )
        elif options["input"]:
            raise CommandError("--input goes with --run")
        else:
            report = grade(spec, code, seed=secrets.randbits(62), hardware=hardware)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(tests_table(report.tests))
            self.stdout.write("")
            self.stdout.write(f"verdict: {report.verdict}  score: {report.score}")
            self.stdout.write(f"message: {report.message}")
            self.stdout.write(f"sandbox: {report.sandbox}  hardware: {hardware['label']}")
            if report.candidate and report.reference:
                self.stdout.write(
                    f"median: {report.candidate.median_ns / 1e6:.3f} ms "
                    f"(reference {report.reference.median_ns / 1e6:.3f} ms)"
                )
        sys.exit(0 if report.verdict == Verdict.ACCEPTED else 1)
