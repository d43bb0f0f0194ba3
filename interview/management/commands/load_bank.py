from django.core.management.base import BaseCommand

from grader.bank import problems_load_report
from interview.design_bank import design_prompts_load_report
from interview.question_bank import questions_load_report


class Command(BaseCommand):
    help = (
        "Load the shipped question bank, design prompts and coding problems: new items are "
        "added, shipped items nobody edited are updated, an author's edits and admin-made items "
        "are kept."
    )

    def handle(self, *args, **options) -> None:
        questions = questions_load_report()
        prompts = design_prompts_load_report()
        problems, problems_kept = problems_load_report()
        self.stdout.write(
            f"questions: {questions.created} added, {questions.updated} updated, "
            f"{len(questions.kept)} kept as authors edited them, "
            f"{questions.unpublished} unpublished (left the bank); "
            f"design prompts: {prompts.created} added, {prompts.updated} updated, "
            f"{len(prompts.kept)} kept as edited, {prompts.unpublished} unpublished; "
            f"{len(problems)} coding problems in the bank, {len(problems_kept)} kept as edited"
        )
        for bank_id in questions.kept + prompts.kept + problems_kept:
            self.stdout.write(f"  kept: {bank_id}")
