"""Hostile submissions, graded through the same synchronous sandbox path as the worker's.

Each must get the right verdict with a clear message and change nothing outside the sandbox;
``test_worker.py`` runs a few of them through a real worker and checks it survives.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import socket
import sys
from pathlib import Path

import pytest
from django.conf import settings

from grader.grading import grade
from grader.harnesses.contract import Verdict
from grader.sandbox import PROJECT_ROOT

CORRECT = """
import numpy as np

def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""


def _grade(spec, code: str):
    return grade(spec, code, seed=7, hardware={"label": "test"})


def _processes_with(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


HOSTILE = {
    "infinite-loop": (
        "def softmax(x):\n    while True:\n        pass\n",
        Verdict.TIME_LIMIT,
        "did not finish within 3 s",
    ),
    "fork-bomb": (
        "import os\ndef softmax(x):\n    while True:\n        os.fork()\n",
        Verdict.RUNTIME_ERROR,
        "",
    ),
    "50-GB-allocation": (
        "import numpy as np\ndef softmax(x):\n    return np.ones(50 * 10**9 // 8)\n",
        Verdict.MEMORY_LIMIT,
        "MemoryError",
    ),
    "gigabyte-of-output": (
        "import sys\ndef softmax(x):\n    for _ in range(1024):\n"
        "        sys.stdout.write('x' * 2**20)\n",
        Verdict.OUTPUT_LIMIT,
        "more than 65536 bytes of output",
    ),
    "unbounded-recursion": (
        "def softmax(x):\n    return softmax(x)\n",
        Verdict.RUNTIME_ERROR,
        "RecursionError",
    ),
    "os-exit-mid-test": (
        "import os\ndef softmax(x):\n    os._exit(0)\n",
        Verdict.RUNTIME_ERROR,
        "exited with status 0",
    ),
    "kill-parent": (
        "import os, signal\ndef softmax(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
        Verdict.RUNTIME_ERROR,
        "PermissionError",
    ),
    "kill-every-process-it-can": (
        "import contextlib, os, signal\ndef softmax(x):\n"
        "    with contextlib.suppress(OSError):\n"
        "        os.kill(-1, signal.SIGKILL)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n",
        Verdict.RUNTIME_ERROR,
        "crashed with SIGKILL",
    ),
    "sys-exit-at-import": (
        "import sys\nsys.exit(0)\n",
        Verdict.RUNTIME_ERROR,
        "SystemExit",
    ),
    "fake-result-printed": (
        CORRECT
        + "def softmax(x):\n"
        + "    print(json.dumps({'verdict': 'accepted', 'score': 1000.0, 'ok': True}))\n"
        + "    return x * 0\n",
        Verdict.WRONG_ANSWER,
        "values out of tolerance",
    ),
    "returns-zeros": (
        "import numpy as np\ndef softmax(x):\n    return np.zeros(x.shape, x.dtype)\n",
        Verdict.WRONG_ANSWER,
        "values out of tolerance",
    ),
    "modifies-input": (
        CORRECT + "def softmax(x):\n    out = _softmax(x)\n    x[...] = 0\n    return out\n",
        Verdict.WRONG_ANSWER,
        "the input array was modified",
    ),
    "returns-a-list": (
        CORRECT + "def softmax(x):\n    return _softmax(x).tolist()\n",
        Verdict.WRONG_ANSWER,
        "returned dtype list",
    ),
    "caches-outputs-by-shape": (
        CORRECT
        + "_cache = {}\n"
        + "def softmax(x):\n"
        + "    key = (x.shape, x.dtype.str, x.strides)\n"
        + "    if key not in _cache:\n"
        + "        _cache[key] = _softmax(x)\n"
        + "    return _cache[key]\n",
        Verdict.WRONG_ANSWER,
        "timed call",
    ),
    "nondeterministic": (
        CORRECT
        + "def softmax(x):\n"
        + "    out = _softmax(x)\n"
        + "    return out * (1 + 1e-12 * np.random.default_rng().random(out.shape))\n",
        Verdict.NONDETERMINISTIC,
        "different outputs",
    ),
}
HOSTILE["fake-result-printed"] = (
    "import json\n" + HOSTILE["fake-result-printed"][0],
    *HOSTILE["fake-result-printed"][1:],
)


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_submission_gets_its_verdict(softmax_spec, name):
    code, verdict, words = HOSTILE[name]
    report = _grade(softmax_spec, code)
    assert report.verdict is verdict, (report.verdict, report.message)
    assert words in report.message
    assert report.score == 0.0


# The harness's own clock, rebound by the candidate's module at import: every time it reports
# is 0 ns.
FORGED_CLOCK = (
    "import grader.harnesses.base as _base, grader.harnesses.function as _function\n"
    "_base.clock_ns = _function.clock_ns = lambda: 0\n"
)
# Burns this much CPU in the benchmark call only: a floor that every trusted sample must hold.
BUSY = (
    "import time\n"
    "def _busy(x, seconds):\n"
    "    if x.shape == (256, 2048):\n"
    "        deadline = time.process_time() + seconds\n"
    "        while time.process_time() < deadline:\n"
    "            pass\n"
)


def test_timer_replaced_by_the_candidate_changes_nothing(softmax_spec):
    code = CORRECT + (
        "import time\n"
        "time.perf_counter = lambda: 0.0\n"
        "time.perf_counter_ns = lambda: 0\n"
        "time.monotonic_ns = lambda: 0\n"
        + FORGED_CLOCK
        + "def softmax(x):\n    return _softmax(x)\n"
    )
    report = _grade(softmax_spec, code)
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert set(report.candidate.reported_ns) == {0}
    assert min(report.candidate.samples_ns) > 10_000  # the trusted clock, not the forged one


def test_work_hidden_from_a_patched_clock_is_timed(softmax_spec):
    code = (
        CORRECT
        + FORGED_CLOCK
        + BUSY
        + ("def softmax(x):\n    _busy(x, 0.02)\n    return _softmax(x)\n")
    )
    report = _grade(softmax_spec, code)
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert min(report.candidate.samples_ns) >= 20_000_000


def test_work_in_a_child_forked_and_reaped_inside_the_call_is_timed(softmax_spec):
    """The issue's attack: the work runs in a child that the call forks and reaps (its CPU time
    leaves the sandbox's process tree with it) while the forged clock reports 0 ns."""
    code = (
        CORRECT
        + FORGED_CLOCK
        + BUSY
        + (
            "import mmap, os\n"
            "def softmax(x):\n"
            "    shared = mmap.mmap(-1, x.size * 8)\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        _busy(x, 0.01)\n"
            "        np.frombuffer(shared, np.float64)[:] = _softmax(x).ravel()\n"
            "        os._exit(0)\n"
            "    os.waitpid(pid, 0)\n"
            "    return np.frombuffer(shared, np.float64).reshape(x.shape).astype(x.dtype)\n"
        )
    )
    report = _grade(softmax_spec, code)
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert set(report.candidate.reported_ns) == {0}
    assert min(report.candidate.samples_ns) >= 10_000_000


# A replaced ``serve`` replies at once and lets a thread write the second half of the output
# while the trusted side reads: the sample taken at the reply sees it unwritten.
LATE_OUTPUT = CORRECT + (
    "import threading, time\n"
    "from grader.harnesses import function as _function\n"
    "def _serve(entry, request, shared):\n"
    "    base = np.ndarray(tuple(request['base_shape']), dtype=request['dtype'],\n"
    "                      buffer=shared, offset=0)\n"
    "    out = _softmax(_function.layout_view(base, request['layout']))\n"
    "    target = np.ndarray(out.shape, out.dtype, buffer=shared,\n"
    "                        offset=request['out_offset'])\n"
    "    half = out.shape[0] // 2\n"
    "    target[:half] = out[:half]\n"
    "    def late():\n"
    "        time.sleep(0.0005)\n"
    "        target[half:] = out[half:]\n"
    "    threading.Thread(target=late).start()\n"
    "    return {'ok': True, 'elapsed_ns': 1, 'dtype': str(out.dtype),\n"
    "            'shape': list(out.shape)}\n"
    "_function.FunctionHarness.serve = staticmethod(_serve)\n"
    "def softmax(x):\n    return _softmax(x)\n"
)


def test_an_output_finished_after_the_reply_is_policy(softmax_spec):
    report = _grade(softmax_spec, LATE_OUTPUT)
    assert report.verdict in (Verdict.POLICY, Verdict.WRONG_ANSWER), report.message
    assert report.score == 0.0


@pytest.mark.parametrize(
    "body",
    [
        "    out = np.empty_like(x)\n"
        "    half = x.shape[0] // 2\n"
        "    def rows(lo, hi):\n"
        "        out[lo:hi] = _softmax(x[lo:hi])\n"
        "    worker = threading.Thread(target=rows, args=(0, half))\n"
        "    worker.start()\n"
        "    rows(half, x.shape[0])\n"
        "    worker.join()\n"
        "    return out\n",
        "    shared = mmap.mmap(-1, x.size * 8)\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        np.frombuffer(shared, np.float64)[:] = _softmax(x).ravel()\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    return np.frombuffer(shared, np.float64).reshape(x.shape).astype(x.dtype)\n",
    ],
    ids=["two-threads", "a-forked-child"],
)
def test_threads_and_children_that_finish_inside_the_call_are_accepted(softmax_spec, body):
    code = CORRECT + "import mmap, os, threading\ndef softmax(x):\n" + body
    report = _grade(softmax_spec, code)
    assert report.verdict is Verdict.ACCEPTED, report.message


def test_forged_reply_on_the_private_channel_changes_nothing(softmax_spec):
    code = CORRECT + (
        "import json, os, socket, struct\n"
        "def softmax(x):\n"
        "    fake = json.dumps({'ok': True, 'elapsed_ns': 1, 'dtype': str(x.dtype),\n"
        "                       'shape': list(x.shape)}).encode()\n"
        "    for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "        try:\n"
        "            s = socket.socket(fileno=os.dup(fd))\n"
        "            s.sendall(struct.pack('!I', len(fake)) + fake)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return _softmax(x) * 0\n"
    )
    report = _grade(softmax_spec, code)
    # Which check rejects it is a race: read after the real call wrote its zeros, the output is
    # wrong; read while the call was still running (the forged reply came first), the output
    # changed after the reply. Neither lets the forged time or answer through.
    rejected = (Verdict.WRONG_ANSWER, Verdict.POLICY)
    assert report.verdict in rejected and report.score == 0.0
    assert report.tests[0].verdict in rejected


def test_no_network_reaches_the_database_redis_or_the_outside(softmax_spec):
    """A port that surely listens on the host (this test's own, reachable from here) is probed
    with the database's, Redis's and the outside's: refused ports alone would pass this on a
    host where nothing listens."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the control: it listens
    code = (
        "import socket\n"
        "def softmax(x):\n"
        "    results = {}\n"
        f"    for host, port in [('127.0.0.1', {port}), ('127.0.0.1', 5432), ('127.0.0.1', 6379),\n"
        "                       ('1.1.1.1', 80), ('8.8.8.8', 53)]:\n"
        "        try:\n"
        "            socket.create_connection((host, port), timeout=2).close()\n"
        "            results[f'{host}:{port}'] = 'connected'\n"
        "        except OSError as error:\n"
        "            results[f'{host}:{port}'] = type(error).__name__\n"
        "    raise RuntimeError('NET ' + repr(results))\n"
    )
    try:
        report = _grade(softmax_spec, code)
    finally:
        listener.close()
    assert report.verdict is Verdict.RUNTIME_ERROR
    assert f"127.0.0.1:{port}" in report.message
    assert "connected" not in report.message


def test_no_secret_reaches_the_environment(softmax_spec, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s3cr3t-key-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:hunter2@db/prod")
    code = "import os\ndef softmax(x):\n    raise RuntimeError('ENV ' + repr(dict(os.environ)))\n"
    report = _grade(softmax_spec, code)
    assert "ENV " in report.message
    for secret in ("s3cr3t-key-value", "hunter2", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert secret not in report.message


def test_project_files_database_and_other_submissions_are_invisible(softmax_spec):
    targets = [
        str(PROJECT_ROOT / "interview" / "settings.py"),
        str(PROJECT_ROOT / "grader" / "services.py"),
        str(Path(settings.DATABASES["default"]["NAME"])),
        str(settings.VAR_DIR / "inferprep.sqlite3"),
        "/etc/shadow",
        "/root/.bash_history",
        "/proc/1/environ",
    ]
    code = (
        "def softmax(x):\n"
        "    seen = {}\n"
        f"    for path in {targets!r}:\n"
        "        try:\n"
        "            seen[path] = open(path, 'rb').read(64)\n"
        "        except OSError as error:\n"
        "            seen[path] = type(error).__name__\n"
        "    raise RuntimeError('READ ' + repr(seen))\n"
    )
    report = _grade(softmax_spec, code)
    assert "READ " in report.message
    seen = report.message.rsplit("READ ", 1)[1]
    for path in targets:
        assert f"'{path}': '" in seen, seen  # an error name, not bytes


def test_writes_outside_its_temporary_directory_fail(softmax_spec, tmp_path):
    outside = [
        str(PROJECT_ROOT / "pwned.txt"),
        str(settings.VAR_DIR / "pwned.txt"),
        str(tmp_path / "pwned.txt"),
        "/usr/pwned.txt",
        "/opt/inferprep/grader/harnesses/function.py",
    ]
    code = (
        "def softmax(x):\n"
        "    results = {}\n"
        f"    for path in {outside!r} + ['/tmp/mine.txt']:\n"
        "        try:\n"
        "            open(path, 'w').write('pwned')\n"
        "            results[path] = 'written'\n"
        "        except OSError as error:\n"
        "            results[path] = type(error).__name__\n"
        "    raise RuntimeError('WRITE ' + json.dumps(results))\n"
    )
    report = _grade(softmax_spec, "import json\n" + code)
    results = json.loads(report.message.rsplit("WRITE ", 1)[1].strip().splitlines()[0])
    assert results.pop("/tmp/mine.txt") == "written"
    assert set(results.values()) <= {"FileNotFoundError", "PermissionError", "OSError"}, results
    for path in outside[:3]:
        assert not Path(path).exists()
    assert "pwned" not in (PROJECT_ROOT / "grader" / "harnesses" / "function.py").read_text()


def test_background_process_is_killed_at_the_end(softmax_spec):
    marker = "4242.4242"
    code = CORRECT + (
        "import subprocess\n"
        f"subprocess.run(['sh', '-c', 'sleep {marker} &'])\n"  # a daemon: its parent is gone
        "def softmax(x):\n    return _softmax(x)\n"
    )
    report = _grade(softmax_spec, code)
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert _processes_with(f"sleep {marker}") == []


def test_cpu_time_limit_stops_a_loop_before_the_wall_clock(softmax_spec):
    spec = dataclasses.replace(
        softmax_spec,
        limits=dataclasses.replace(softmax_spec.limits, cpu_time_s=2, test_time_s=20),
    )
    report = _grade(spec, "def softmax(x):\n    while True:\n        pass\n")
    assert report.verdict is Verdict.TIME_LIMIT
    assert "more than 2 s of CPU time" in report.message


def test_memory_spread_over_many_processes_hits_the_cap(softmax_spec):
    spec = dataclasses.replace(
        softmax_spec,
        limits=dataclasses.replace(softmax_spec.limits, memory_bytes=1024**3, test_time_s=20),
    )
    code = (
        "import os, time\n"
        "import numpy as np\n"
        "def softmax(x):\n"
        "    for _ in range(6):\n"
        "        if os.fork() == 0:\n"
        "            block = np.ones(250 * 2**20, dtype=np.uint8)\n"
        "            time.sleep(30)\n"
        "    time.sleep(30)\n"
    )
    report = _grade(spec, code)
    assert report.verdict is Verdict.MEMORY_LIMIT, report.message
    assert "processes together used more than 1073741824 bytes" in report.message


class _LateWriter:
    """A sandbox session whose call replies with half of the softmax written and writes the
    rest only when it is frozen: the fastest a thread left running could finish it."""

    def __init__(self, harness, size: int) -> None:
        import mmap

        self.harness = harness
        self.shared = mmap.mmap(-1, size)
        self.pending = None

    def freeze(self) -> None:
        if self.pending is not None:
            self.pending()
            self.pending = None

    def call(self, request, timeout_s):
        import numpy as np

        base = np.ndarray(tuple(request["base_shape"]), request["dtype"], self.shared)
        e = np.exp(base - base.max(axis=-1, keepdims=True))
        out = e / e.sum(axis=-1, keepdims=True)
        target = np.ndarray(out.shape, out.dtype, self.shared, request["out_offset"])
        half = out.shape[0] // 2
        target[:half] = out[:half]

        def finish() -> None:
            target[half:] = out[half:]

        self.pending = finish
        return {"ok": True, "elapsed_ns": 1, "dtype": str(out.dtype), "shape": list(out.shape)}, 1


def test_output_completed_between_the_reply_and_the_freeze_is_policy(softmax_spec):
    from grader.harnesses.base import CandidateFailure
    from grader.harnesses.function import FunctionHarness

    harness = FunctionHarness(softmax_spec)
    session = _LateWriter(harness, harness.shared_bytes())
    case = softmax_spec.tests[0]
    x, base = harness._input(case, seed=7)
    with pytest.raises(CandidateFailure) as failure:
        harness._call(session, case, x, base, timeout_s=1.0)
    assert failure.value.verdict is Verdict.POLICY
    assert "still being written after the call returned" in failure.value.message


def _syscall_numbers() -> dict[str, int]:
    from grader.seccomp import ARCHITECTURES

    return ARCHITECTURES[platform.machine()].syscalls


def test_namespaces_mounts_ptrace_and_leaving_the_process_group_are_refused(softmax_spec):
    """Each attempt runs in a forked child, whose exit status is 0 where the call worked and
    the errno where it was refused; every one of them works in a sandbox without a filter."""
    numbers = _syscall_numbers()
    code = f"""
import ctypes, errno, json, os, signal, time

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000


def status(result):
    return 0 if result != -1 else ctypes.get_errno()


def in_child(attempt):
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(attempt())
        except OSError as error:
            os._exit(error.errno)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "worked" if code == 0 else errno.errorcode.get(code, str(code))


def raw_clone(flags):
    pid = libc.syscall({numbers["clone"]}, ctypes.c_long(flags | signal.SIGCHLD), 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    return status(pid)


def clone3():
    args = (ctypes.c_uint64 * 11)()
    args[4] = signal.SIGCHLD  # exit_signal
    pid = libc.syscall({numbers["clone3"]}, ctypes.byref(args), ctypes.sizeof(args))
    if pid == 0:
        os._exit(0)
    return status(pid)


def mount_after_unshare():
    libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)
    return status(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))


def ptrace_sibling():
    sibling = os.fork()
    if sibling == 0:
        time.sleep(60)
        os._exit(0)
    try:
        return status(libc.ptrace(16, sibling, 0, 0))  # PTRACE_ATTACH
    finally:
        os.kill(sibling, signal.SIGKILL)


def setsid():
    os.setsid()
    return 0


def setpgid():
    os.setpgid(0, 0)
    return 0


attempts = {{
    "unshare-user": lambda: status(libc.unshare(CLONE_NEWUSER)),
    "clone-new-user": lambda: raw_clone(CLONE_NEWUSER),
    "clone3": clone3,
    "mount": mount_after_unshare,
    "ptrace-sibling": ptrace_sibling,
    "setsid": setsid,
    "setpgid": setpgid,
    "personality-no-aslr": lambda: status(libc.personality(0x0040000)),
}}
results = {{name: in_child(attempt) for name, attempt in attempts.items()}}
raise RuntimeError("SYSCALLS " + json.dumps(results))
"""
    report = _grade(softmax_spec, code)
    results = json.loads(report.message.rsplit("SYSCALLS ", 1)[1].strip().splitlines()[0])
    assert results.pop("clone3") == "ENOSYS"  # the C library then falls back to clone
    assert results == dict.fromkeys(results, "EPERM") and len(results) == 7, results


def test_no_host_path_is_visible_inside(softmax_spec):
    code = (
        "import json, os, sys\n"
        "import numpy\n"
        "seen = {\n"
        "    'init': open('/proc/1/cmdline').read(),\n"
        "    'self': open('/proc/self/cmdline').read(),\n"
        "    'paths': [sys.executable, sys.prefix, sys.base_prefix, numpy.__file__, os.getcwd()],\n"
        "    'environ': open('/proc/self/environ').read(),\n"
        "}\n"
        "raise RuntimeError('SEEN ' + json.dumps(seen))\n"
    )
    report = _grade(softmax_spec, code)
    seen = json.loads(report.message.rsplit("SEEN ", 1)[1].strip().splitlines()[0])
    assert seen["init"].startswith("bwrap\0"), seen  # bwrap's pid 1, whose argv was the leak
    host_paths = {str(PROJECT_ROOT), sys.prefix, sys.base_prefix, str(Path.home())}
    host_paths |= {str(Path(path).resolve()) for path in host_paths}
    text = json.dumps(seen)
    assert not [path for path in host_paths if path in text], seen
