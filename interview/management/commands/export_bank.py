from pathlib import Path

from django.core.management.base import BaseCommand

from interview.design import DESIGN_DIR
from interview.design_bank import design_export
from interview.question_bank import BANK_DIR, bank_export


class Command(BaseCommand):
    help = (
        "Write the question bank and the design prompts from the database back to YAML: one "
        "file per topic, one file per prompt (each in the file it ships in)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "directory", nargs="?", default=str(BANK_DIR), help="defaults to interview/bank/"
        )
        parser.add_argument(
            "--design-directory",
            help="where the design prompts go: interview/design/ when the bank goes to "
            "interview/bank/, else <directory>/design/",
        )

    def handle(self, *args, directory: str, design_directory: str | None, **options) -> None:
        bank_dir = Path(directory)
        if design_directory is None:
            default = bank_dir.resolve() == BANK_DIR.resolve()
            design_directory = str(DESIGN_DIR if default else bank_dir / "design")
        written = bank_export(bank_dir)
        prompts = design_export(Path(design_directory))
        self.stdout.write(
            f"wrote {len(written)} files to {directory} and {len(prompts)} design prompts to "
            f"{design_directory} (a prompt file that already holds its row is left as it is)"
        )
