from django.core.management.base import BaseCommand

from grader.bank import problems_load
from interview.question_bank import questions_load


class Command(BaseCommand):
    help = (
        "Load the question bank and the coding problems, idempotently (stable ids update in place)."
    )

    def handle(self, *args, **options) -> None:
        questions = questions_load()
        problems = problems_load()
        self.stdout.write(f"loaded {questions} questions and {problems} coding problems")
