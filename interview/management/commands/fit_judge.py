"""Fit the written-answer judge's verdict on the labelled tuning answers.

    python manage.py fit_judge [--dry-run]

Grades every case of tests/interview/answer_cases/tuning*.yaml with the shipped rubrics, prints
each file's agreement by kind when it is left out of the fit (before: the matcher's share of
points against the pass mark; after: the verdict fitted on the other files), then fits on them
all and writes interview/judge_verdict.json. Held-out sets are never read. A fit whose weights
point the wrong way (more coverage lowering a pass, a contradiction raising it) is refused.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from interview import verdict
from interview.judging import KINDS, tuning_case_files, verdict_fit


class Command(BaseCommand):
    help = "Fit the written-answer verdict on the tuning answers and write its weights."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if not verdict.WEIGHTS_FILE.exists():
            # Grading needs some weights; the signals it records do not depend on them.
            verdict.model_write(verdict.VerdictModel(
                (0.0,) * len(verdict.SIGNAL_NAMES), (1.0,) * len(verdict.SIGNAL_NAMES),
                (0.0,) * len(verdict.SIGNAL_NAMES), 0.0,
            ))  # fmt: skip
        fitted = verdict_fit(tuning_case_files())
        self.stdout.write("left out    kind        cases  before  after")
        for name, table in fitted.left_out.items():
            for kind in (k for k in KINDS if k in table):
                cases, before, after = table[kind]
                self.stdout.write(f"{name:<11} {kind:<11} {cases:>5} {before:>7} {after:>6}")
        weights = ", ".join(
            f"{n} {w:+.2f}" for n, w in zip(verdict.SIGNAL_NAMES, fitted.model.weights, strict=True)
        )
        self.stdout.write(f"weights: {weights}; bias {fitted.model.bias:+.2f}")
        if wrong_way := verdict.sign_violations(fitted.model):
            raise CommandError(f"refused: these weights point the wrong way: {wrong_way}")
        if not options["dry_run"]:
            verdict.model_write(fitted.model)
            verdict.shipped_model.cache_clear()
            self.stdout.write(f"wrote {verdict.WEIGHTS_FILE}")
