"""``manage.py warm_judge``: embed every rubric's texts (the database's, which the pages grade
with) once and keep them under var/.

`manage.py serve` runs it beside the site at each start; the server reads the file as it
starts, so no candidate's grade waits for a rubric's texts to be embedded (from the second
start on, or after this command ran once). It grades nobody, so the file holds rubric texts
alone.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from interview.judging import judge_warm_up
from interview.selectors import judge_rubrics


class Command(BaseCommand):
    help = "Embed every rubric's texts and keep them in var/ for the server's next start."

    def handle(self, *args, **options) -> None:
        path = settings.JUDGE_EMBEDDINGS_PATH
        started = time.monotonic()
        computed = judge_warm_up(path, keep=True, source=judge_rubrics())
        self.stdout.write(
            f"judge: {computed} rubric sentences embedded in {time.monotonic() - started:.0f} s"
            f" (kept in {path})"
            if computed
            else f"judge: every rubric text was already kept in {path}"
        )
