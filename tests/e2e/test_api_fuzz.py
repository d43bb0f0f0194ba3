"""Schemathesis against the running stack: every operation of /api/openapi.json, generated
inputs valid and invalid, no 5xx, and every response as the document says."""

from __future__ import annotations

import subprocess
import sys

from django.contrib.auth import get_user_model

from grader.access import api_token_create
from grader.bank import problems_load

# Examples per operation: enough to hit every schema branch without a long CI run.
EXAMPLES_PER_OPERATION = 30
FUZZ_TIMEOUT_S = 480


def test_every_operation_survives_schemathesis(live_stack, tmp_path):
    problems_load()
    user = get_user_model().objects.create_user("fuzzer", password="pw-fuzzer-1")
    token = api_token_create(user, "schemathesis")[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live_stack.base_url}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--generation-deterministic",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_TIMEOUT_S,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
