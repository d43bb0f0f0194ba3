"""The coding problems that ship in the bank: one folder per problem under grader/problems/."""

from __future__ import annotations

from pathlib import Path

PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"


def problems_load() -> int:
    """Create or update every shipped problem from its folder; returns how many were loaded."""
    return len([folder for folder in PROBLEMS_DIR.iterdir() if (folder / "problem.yaml").exists()])
