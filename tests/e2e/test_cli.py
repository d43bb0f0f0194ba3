"""The command-line client against the real stack: log in, list, fetch starter code, submit."""

from __future__ import annotations

import os
import subprocess
import sys

from django.contrib.auth import get_user_model

from grader.bank import PROBLEMS_DIR, problems_load

# Submitting goes through the real queue, sandbox and worker.
CLI_TIMEOUT_S = 180


def inferprep(live_stack, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "INFERPREP_SERVER": live_stack.base_url,
        "INFERPREP_PASSWORD": "pw-cli-user-1",
    }
    return subprocess.run(
        [sys.executable, "-m", "grader.client", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def test_cli_login_problems_show_and_submit(live_stack, tmp_path):
    problems_load()
    get_user_model().objects.create_user("cli-user", password="pw-cli-user-1")

    login = inferprep(live_stack, tmp_path, "login", "--username", "cli-user")
    assert login.returncode == 0, login.stderr
    assert (tmp_path / "config" / "inferprep" / "config.json").stat().st_mode & 0o777 == 0o600

    listing = inferprep(live_stack, tmp_path, "problems")
    assert listing.returncode == 0, listing.stderr
    assert "cpu-softmax" in listing.stdout

    show = inferprep(live_stack, tmp_path, "show", "cpu-softmax")
    assert show.returncode == 0, show.stderr
    assert show.stdout.count("Fast, stable softmax on the CPU") == 1  # the title, once
    assert (tmp_path / "cpu-softmax.py").read_text() == (
        PROBLEMS_DIR / "cpu-softmax" / "starter.py"
    ).read_text()
    again = inferprep(live_stack, tmp_path, "show", "cpu-softmax")
    assert again.returncode == 2 and "--force" in again.stderr

    # A reader that stops early (`inferprep show ... | head`): the read end is closed before
    # the client writes, so its first write fails; it stops quietly, as `cat` does.
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "INFERPREP_SERVER": live_stack.base_url}
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "grader.client", "show", "cpu-softmax", "--force"],
        cwd=tmp_path,
        env=os.environ | config,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader_gone.stdout.close()
    stderr = reader_gone.stderr.read()
    assert reader_gone.wait(timeout=CLI_TIMEOUT_S) == 141
    assert "Traceback" not in stderr, stderr

    reference = tmp_path / "reference.py"
    reference.write_text((PROBLEMS_DIR / "cpu-softmax" / "reference.py").read_text())
    accepted = inferprep(live_stack, tmp_path, "submit", "cpu-softmax", str(reference))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "verdict: accepted" in accepted.stdout
    assert "] " in accepted.stdout  # the progress bar
    # each test's verdict as the grader judged it, the bar advancing per finished test
    assert "] 10/10 same-input-twice: accepted (" in accepted.stdout

    wrong = tmp_path / "wrong.py"
    wrong.write_text((PROBLEMS_DIR / "cpu-softmax" / "wrong" / "unstable_exponent.py").read_text())
    rejected = inferprep(live_stack, tmp_path, "submit", "cpu-softmax", str(wrong))
    assert rejected.returncode == 1
    assert "verdict: wrong_answer" in rejected.stdout or "verdict: runtime_error" in rejected.stdout
    assert ": wrong answer (" in rejected.stdout or ": runtime error (" in rejected.stdout


def test_cli_without_login_says_how(live_stack, tmp_path):
    result = inferprep(live_stack, tmp_path, "problems")
    assert result.returncode == 2
    assert "inferprep login" in result.stderr
