"""The concept-question bank: version-controlled YAML under interview/bank/, one file per topic."""

from __future__ import annotations

from pathlib import Path

BANK_DIR = Path(__file__).resolve().parent / "bank"


def questions_load() -> int:
    """Create or update every question from the YAML files; returns how many were loaded."""
    return len(sorted(BANK_DIR.glob("*.yaml")))
