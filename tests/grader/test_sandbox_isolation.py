"""Sandboxes that live at the same time cannot reach each other: each has a uid of its own (so
its own process count), stays in the process group it started in, and a hostile one changes
nothing about an honest grade beside it. Attacks first, then what must keep working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grader.grading import grade
from grader.harnesses import harness_get
from grader.harnesses.contract import SandboxKind, Verdict
from grader.sandbox import (
    SANDBOX_UID_BASE,
    SandboxSession,
    sandbox_kind,
    uid_slot_claim,
)

pytestmark = pytest.mark.skipif(
    sandbox_kind() is not SandboxKind.BUBBLEWRAP, reason="bubblewrap does not work here"
)

CORRECT = """
import numpy as np

def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""
# Two threads: the harness's and one started for every call.
HONEST_THREADED = (
    CORRECT
    + """
import threading

def softmax(x):
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=_softmax(x)))
    worker.start()
    worker.join()
    return result["out"]
"""
)
# Parks sleeping children until the kernel refuses one more (its RLIMIT_NPROC), then answers
# correctly: with one uid for every sandbox, that left no process for anyone else.
HOSTILE_PARKS_CHILDREN = (
    CORRECT
    + """
import subprocess

parked = []
while len(parked) < 500:
    try:
        parked.append(subprocess.Popen(["sleep", "3600"]))
    except OSError:
        break
print(f"parked {len(parked)} children")

def softmax(x):
    return _softmax(x)
"""
)
# What a wait on a sandbox's processes may take at most on a loaded machine (not a sleep).
SETTLE_TIMEOUT_S = 30


def _grade(spec, code: str, progress=None):
    if progress is None:
        return grade(spec, code, seed=7, hardware={"label": "test"})
    return grade(spec, code, seed=7, hardware={"label": "test"}, progress=progress)


def test_a_hostile_grade_beside_an_honest_one_changes_nothing_of_its_verdict(softmax_spec):
    alone = _grade(softmax_spec, HONEST_THREADED)
    assert alone.verdict is Verdict.ACCEPTED, alone.message

    hostile_loaded, honest_graded = threading.Event(), threading.Event()
    hostile_reports = []

    def hold_while_the_honest_grade_runs(step: str, data: dict) -> None:
        # Called on the grading thread once the hostile module has parked its children: the
        # hostile sandbox stays up, children and all, until the honest grade is over.
        if step == "sandbox_started" and not hostile_loaded.is_set():
            hostile_loaded.set()
            honest_graded.wait(timeout=600)

    hostile = threading.Thread(
        target=lambda: hostile_reports.append(
            _grade(softmax_spec, HOSTILE_PARKS_CHILDREN, hold_while_the_honest_grade_runs)
        )
    )
    hostile.start()
    try:
        assert hostile_loaded.wait(timeout=120)
        beside_hostile = _grade(softmax_spec, HONEST_THREADED)
    finally:
        honest_graded.set()
        hostile.join()

    parked = int(re.search(r"parked (\d+) children", hostile_reports[0].stdout).group(1))
    assert parked >= softmax_spec.limits.processes - 4  # it did fill its process limit
    assert beside_hostile.verdict is alone.verdict, beside_hostile.message
    assert [t.verdict for t in beside_hostile.tests] == [t.verdict for t in alone.tests]


def _stopped(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # gone: nothing left running
    return state in ("T", "t")


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_freeze_stops_every_process_even_one_that_tried_to_leave_its_group(softmax_spec):
    # A grandchild that tries to start a session of its own, then spins: out of the group,
    # it would keep burning CPU while the other solution is timed.
    code = CORRECT + (
        "import os\n"
        "if os.fork() == 0:\n"
        "    if os.fork() == 0:\n"
        "        try:\n"
        "            os.setsid()\n"
        "        except OSError:\n"
        "            pass\n"
        "        while True:\n"
        "            pass\n"
        "    os.wait()\n"
        "def softmax(x):\n    return _softmax(x)\n"
    )
    harness_class = harness_get(softmax_spec.harness)
    harness = harness_class(softmax_spec)
    with SandboxSession(harness_class, code, "softmax", softmax_spec.limits) as session:
        session.start(harness.shared_bytes())
        _wait_until(lambda: len(session._tree()) >= 5, "the grandchild never started")
        tree = session._tree()  # bwrap, its init, the runner, the child and the grandchild
        session.freeze()
        _wait_until(lambda: all(map(_stopped, tree)), "a process of the sandbox still runs")
        session.thaw()
        _wait_until(
            lambda: not any(_stopped(pid) for pid in tree if Path(f"/proc/{pid}").exists()),
            "a process of the sandbox stayed stopped",
        )


_CLAIM_AND_HOLD = (
    "import sys; from pathlib import Path; from grader.sandbox import uid_slot_claim\n"
    "slot = uid_slot_claim(Path(sys.argv[1]), int(sys.argv[2]))\n"
    "print(slot.uid, flush=True); sys.stdin.read()\n"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="a normal user's sandboxes need no uid claim")
def test_worker_processes_on_one_host_never_share_a_sandbox_uid(tmp_path):
    slots = 3
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIM_AND_HOLD, str(tmp_path), str(slots)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(slots)
    ]
    try:
        uids = [int(holder.stdout.readline()) for holder in holders]
        assert sorted(uids) == [SANDBOX_UID_BASE + 1 + slot for slot in range(slots)]
        with pytest.raises(RuntimeError, match="sandbox uids"):
            uid_slot_claim(tmp_path, slots)
        holders[0].stdin.close()  # its holder exits: the kernel drops its lock
        holders[0].wait()
        with uid_slot_claim(tmp_path, slots) as slot:
            assert slot.uid == uids[0]
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


LEGIT_PROCESSES = (
    CORRECT
    + """
import multiprocessing, os, subprocess, threading

assert subprocess.run(["sh", "-c", "echo $((6 * 7))"], capture_output=True, text=True).stdout == "42\\n"
with multiprocessing.get_context("fork").Pool(2) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]


def softmax(x):
    # A forked child computes; a thread of this process reads its answer.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        with os.fdopen(write_end, "wb") as out:
            out.write(_softmax(x).tobytes())
        os._exit(0)
    os.close(write_end)
    answer = []
    reader = threading.Thread(target=lambda: answer.append(os.fdopen(read_end, "rb").read()))
    reader.start()
    reader.join()
    os.waitpid(pid, 0)
    return np.frombuffer(answer[0], dtype=x.dtype).reshape(x.shape)
"""
)


def test_threads_fork_subprocess_and_multiprocessing_still_work(softmax_spec):
    report = _grade(softmax_spec, LEGIT_PROCESSES)
    assert report.verdict is Verdict.ACCEPTED, report.message


def _processes_of(uid: int) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if f"\nUid:\t{uid}\t" in status:
            found.append(int(pid))
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="a normal user's sandboxes need no uid claim")
def test_a_killed_sandbox_gives_its_uid_back_only_once_its_processes_are_gone(softmax_spec):
    # Children that let go of the output pipes, so nothing but their exit says they are gone;
    # one holds 768 MiB, which takes the kernel a while to free once it is killed.
    code = CORRECT + (
        "import os, time\n"
        "ready_read, ready_write = os.pipe()\n"
        "for child in range(20):\n"
        "    if os.fork() == 0:\n"
        "        os.close(1)\n"
        "        os.close(2)\n"
        "        held = np.ones(96 * 2**20) if child == 0 else None\n"
        "        os.write(ready_write, b'.')\n"
        "        time.sleep(3600)\n"
        "for _ in range(20):\n"
        "    os.read(ready_read, 1)\n"
        "def softmax(x):\n    return _softmax(x)\n"
    )
    harness_class = harness_get(softmax_spec.harness)
    harness = harness_class(softmax_spec)
    session = SandboxSession(harness_class, code, "softmax", softmax_spec.limits)
    with session:
        session.start(harness.shared_bytes())
        uid = session._uid_slot.uid
        assert len(_processes_of(uid)) > 20
        session.kill()  # as a time limit or the memory watch does
    assert _processes_of(uid) == []
