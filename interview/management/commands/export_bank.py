from pathlib import Path

from django.core.management.base import BaseCommand

from interview.question_bank import BANK_DIR, bank_export


class Command(BaseCommand):
    help = "Write the question bank from the database back to YAML, one file per topic."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "directory", nargs="?", default=str(BANK_DIR), help="defaults to interview/bank/"
        )

    def handle(self, *args, directory: str, **options) -> None:
        written = bank_export(Path(directory))
        self.stdout.write(f"wrote {len(written)} files to {directory}")
