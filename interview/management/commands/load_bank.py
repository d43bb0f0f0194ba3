from pathlib import Path

from django.core.management.base import BaseCommand

BANK_DIR = Path(__file__).resolve().parents[2] / "bank"


class Command(BaseCommand):
    help = "Load the question bank (interview/bank/*.yaml) and the coding problems, idempotently."

    def handle(self, *args, **options) -> None:
        files = sorted(BANK_DIR.glob("*.yaml"))
        self.stdout.write(
            f"question bank: {len(files)} files under {BANK_DIR}; nothing to load yet"
        )
