"""Grading: problems, submissions, verdicts, the sandbox and the workers that run it."""
