"""The in-sandbox entry point: ``python -I runner.py CONTROL_FD SHARED_FD``.

It applies the resource limits, loads the candidate's code as module ``solution`` (a syntax
error is a compile error with its line), then serves the trusted side's requests until told to
exit. It imports no Django and opens no database: only the harness package is visible here.
"""

from __future__ import annotations

import linecache
import mmap
import os
import resource
import socket
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from grader.harnesses import harness_get
from grader.harnesses.channel import message_receive, message_send
from grader.harnesses.contract import Verdict

HARNESS_DIR = str(Path(__file__).resolve().parent)
SOLUTION_FILE = "solution.py"


def limits_apply(limits: dict[str, Any]) -> None:
    """Lower this process's rlimits before any candidate code exists; children inherit them."""
    cpu_s = int(limits["cpu_time_s"])
    for name, value in (
        (resource.RLIMIT_CPU, (cpu_s, cpu_s + 1)),
        (resource.RLIMIT_AS, (limits["memory_bytes"],) * 2),
        (resource.RLIMIT_FSIZE, (limits["file_size_bytes"],) * 2),
        (resource.RLIMIT_NPROC, (limits["processes"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(name, value)


def candidate_traceback(error: BaseException) -> str:
    """The traceback of the candidate's code only: frames of this harness are left out."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _is_harness(f.filename)]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(error), error)
    return "Traceback (most recent call last):\n" * bool(frames) + "".join(lines)


def _is_harness(filename: str) -> bool:
    return filename.startswith(HARNESS_DIR)


def failure_verdict(error: BaseException) -> Verdict:
    """Which verdict an exception raised by candidate code means."""
    if isinstance(error, MemoryError):
        return Verdict.MEMORY_LIMIT
    if type(error).__name__ == "OutOfMemoryError" and "torch" in type(error).__module__:
        return Verdict.GPU_OOM
    return Verdict.RUNTIME_ERROR


def solution_load(source: str, entry_point: str) -> tuple[Any, dict[str, Any] | None]:
    """Compile and run the candidate's module; returns (entry, None) or (None, failure reply)."""
    try:
        code = compile(source, SOLUTION_FILE, "exec")
    except (SyntaxError, ValueError) as error:
        return None, {
            "ok": False,
            "verdict": Verdict.COMPILE_ERROR,
            "message": "".join(traceback.format_exception_only(type(error), error)),
        }
    # The source has no file: register it so inspect.getsource works (Triton's @jit reads it).
    linecache.cache[SOLUTION_FILE] = (len(source), None, source.splitlines(True), SOLUTION_FILE)
    module = types.ModuleType("solution")
    module.__file__ = SOLUTION_FILE
    sys.modules["solution"] = module
    try:
        exec(code, module.__dict__)
    except BaseException as error:  # SystemExit too: the module may not end the run
        return None, {
            "ok": False,
            "verdict": failure_verdict(error),
            "message": candidate_traceback(error),
        }
    entry = getattr(module, entry_point, None)
    if not callable(entry):
        return None, {
            "ok": False,
            "verdict": Verdict.RUNTIME_ERROR,
            "message": f"{SOLUTION_FILE} defines no function {entry_point}()",
        }
    return entry, None


def main(control_fd: int, shared_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    shared = mmap.mmap(shared_fd, 0)
    start = message_receive(control)
    limits_apply(start["limits"])
    # Group-writable files: a compile cache shared by the sandboxes of one source is written
    # by each under its own uid, in the group they share (see grader.sandbox).
    os.umask(0o007)
    harness = harness_get(start["kind"])
    os.chdir(os.environ.get("TMPDIR", "/tmp"))
    entry, failure = solution_load(start["source"], start["entry_point"])
    message_send(control, failure or {"ok": True})
    if failure:
        return
    while True:
        request = message_receive(control)
        if request.get("op") == "exit":
            return
        try:
            reply = harness.serve(entry, request, shared)
        except BaseException as error:
            reply = {
                "ok": False,
                "verdict": failure_verdict(error),
                "message": candidate_traceback(error),
            }
        message_send(control, reply)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
