"""Run candidate code in a fresh bubblewrap sandbox and talk to it over a private channel.

Each :class:`SandboxSession` is one fresh process tree under ``bwrap``: its own empty network
namespace, its own PID, IPC and UTS namespaces, a size-capped private ``/tmp``, read-only
system, Python and virtual environment, the harness package and nothing else of the project
(no settings, no database, no ``var/``), a scrubbed environment, an unprivileged uid (the
host's ``nobody`` via ``setpriv`` when the worker is root, else uid 65534 in a user
namespace), rlimits on CPU time, address space, processes and file size (applied by the
runner before the candidate's code exists), the resident memory of the whole tree summed
every 0.1 s against the memory cap, a wall-clock limit per call and per run, stdout
and stderr capped, and the whole tree killed at the end (PID namespace plus
``--die-with-parent``).

Where ``bwrap`` is missing or cannot create namespaces, the run falls back to a plain
subprocess with the same rlimits and every verdict says ``unsandboxed``; with ``DEBUG`` off
the app refuses to start that way (``grader/apps.py``).

This module imports no Django: the worker passes everything in.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from grader.harnesses.base import CandidateFailure, Harness
from grader.harnesses.channel import (
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    message_receive,
    message_send,
)
from grader.harnesses.contract import Limits, SandboxKind, Verdict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where the harness package appears inside the sandbox.
SANDBOX_CODE_DIR = "/opt/inferprep"
NOBODY_UID = 65534
# Python start-up plus NumPy (or torch) import must fit in this before the first request.
START_TIMEOUT_S = 30.0
# A private /tmp large enough for a solution's scratch files, small enough not to fill RAM.
TMPFS_BYTES = 64 * 1024**2
# How often the whole sandbox tree's resident memory is summed against the memory cap; the
# per-process address-space rlimit alone would let each of its processes take the cap.
MEMORY_WATCH_INTERVAL_S = 0.1
# Single-threaded maths libraries: timings must not depend on how many cores are idle.
THREAD_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_MAX_THREADS",
    )
}
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from grader.harnesses.runner import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)


def _bwrap_command(packages: tuple[str, ...]) -> list[str]:
    """The bwrap arguments up to (not including) the program it runs."""
    # /tmp first: a virtual environment that lives under /tmp is bound on top of it, not hidden.
    command = ["bwrap", "--size", str(TMPFS_BYTES), "--perms", "1777", "--tmpfs", "/tmp"]
    for system_dir in ("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache"):
        command += ["--ro-bind-try", system_dir, system_dir]
    created: set[str] = {"/", "/usr", "/lib", "/lib64", "/bin", "/etc", "/tmp"}

    def bind(source: Path, target: str) -> None:
        parents = [p for p in reversed(Path(target).parents) if str(p) not in created]
        for parent in parents:  # bwrap would make them 0700, unreadable to nobody
            command.extend(["--perms", "0755", "--dir", str(parent)])
            created.add(str(parent))
        command.extend(["--ro-bind", str(source), target])
        created.add(target)

    for prefix in sorted({sys.base_prefix, sys.prefix}):
        bind(Path(prefix), prefix)
    bind(PROJECT_ROOT / "grader" / "__init__.py", f"{SANDBOX_CODE_DIR}/grader/__init__.py")
    bind(PROJECT_ROOT / "grader" / "harnesses", f"{SANDBOX_CODE_DIR}/grader/harnesses")
    for package in packages:
        bind(PROJECT_ROOT / package, f"{SANDBOX_CODE_DIR}/{package}")
    command += ["--dev", "/dev", "--proc", "/proc"]
    command += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    command += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    command += ["--die-with-parent", "--new-session", "--clearenv", "--chdir", "/tmp"]
    for name, value in _sandbox_env("/tmp").items():
        command += ["--setenv", name, value]
    if os.geteuid() == 0:
        command += [
            "--",
            "setpriv",
            f"--reuid={NOBODY_UID}",
            f"--regid={NOBODY_UID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
        ]
    else:
        command[1:1] = ["--unshare-user", "--uid", str(NOBODY_UID), "--gid", str(NOBODY_UID)]
    command.append("--")
    return command


def _sandbox_env(tmp_dir: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": tmp_dir, "TMPDIR": tmp_dir, "LANG": "C.UTF-8"} | (
        THREAD_ENV
    )


@lru_cache(maxsize=1)
def sandbox_kind() -> SandboxKind:
    """Whether bubblewrap is installed and really works here (probed once per process)."""
    if shutil.which("bwrap") is None or (os.geteuid() == 0 and shutil.which("setpriv") is None):
        return SandboxKind.UNSANDBOXED
    probe = _bwrap_command(()) + [sys.executable, "-I", "-c", "import os; print(os.getuid())"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return SandboxKind.UNSANDBOXED
    if result.returncode == 0 and result.stdout.strip() == str(NOBODY_UID):
        return SandboxKind.BUBBLEWRAP
    return SandboxKind.UNSANDBOXED


class _CappedReader(threading.Thread):
    """Drains one output pipe, keeping at most ``cap`` bytes and noticing when it overflows."""

    def __init__(self, stream, cap: int, on_overflow) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.on_overflow = on_overflow
        self.kept = bytearray()
        self.overflowed = False

    def run(self) -> None:
        while chunk := self.stream.read1(65536):
            room = self.cap - len(self.kept)
            self.kept += chunk[: max(room, 0)]
            if len(chunk) > room and not self.overflowed:
                self.overflowed = True
                self.on_overflow()

    def text(self) -> str:
        return self.kept.decode(errors="replace")


class _MemoryWatch(threading.Thread):
    """Kills the sandbox when the resident memory of all its processes exceeds the cap."""

    def __init__(self, session: SandboxSession) -> None:
        super().__init__(daemon=True, name="sandbox-memory-watch")
        self.session = session
        self.stop = threading.Event()

    def run(self) -> None:
        page_bytes = os.sysconf("SC_PAGE_SIZE")
        cap = self.session.limits.memory_bytes
        while not self.stop.wait(MEMORY_WATCH_INTERVAL_S) and self.session.alive():
            resident = 0
            for pid in self.session._tree():
                try:
                    with open(f"/proc/{pid}/statm", "rb") as statm:
                        resident += int(statm.read().split()[1]) * page_bytes
                except (OSError, ValueError, IndexError):
                    continue
            if resident > cap:
                self.session._limit_hit = Verdict.MEMORY_LIMIT
                self.session.kill()
                return


class SandboxSession:
    """One fresh sandboxed process running a harness kind's in-sandbox half on one solution.

    Use as a context manager; :meth:`start` loads the source (raising
    :class:`CandidateFailure` for a compile or import error), :meth:`call` sends one request.
    """

    def __init__(
        self, harness: type[Harness], source: str, entry_point: str, limits: Limits
    ) -> None:
        self.harness = harness
        self.source = source
        self.entry_point = entry_point
        self.limits = limits
        self.kind = sandbox_kind()
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.shared: mmap.mmap | None = None
        self.deadline = 0.0
        self.stdout = self.stderr = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._limit_hit: Verdict | None = None
        self.frozen = False
        self._pids: list[int] = []
        self._memory_watch: _MemoryWatch | None = None

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self, shared_bytes: int) -> None:
        """Start the sandbox and load the candidate's source in it."""
        trusted_end, sandbox_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        shared_fd = os.memfd_create("inferprep-shared", 0)
        os.ftruncate(shared_fd, shared_bytes)
        self.shared = mmap.mmap(shared_fd, shared_bytes)
        passed = (sandbox_end.fileno(), shared_fd)
        program = ["-I", "-B", "-c", _BOOTSTRAP]
        if self.kind is SandboxKind.BUBBLEWRAP:
            command = _bwrap_command(self.harness.sandbox_packages) + [sys.executable, *program]
            command += [SANDBOX_CODE_DIR, *map(str, passed)]
            env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="inferprep-run-")
            command = [sys.executable, *program, str(PROJECT_ROOT), *map(str, passed)]
            env, cwd = _sandbox_env(self._tmp.name), self._tmp.name
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=passed,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            sandbox_end.close()
            os.close(shared_fd)
        self.control = trusted_end
        self._pids = [self.process.pid]
        self.deadline = time.monotonic() + self.limits.wall_time_s
        cap = self.limits.output_bytes
        self.stdout = _CappedReader(self.process.stdout, cap, self._output_overflow)
        self.stderr = _CappedReader(self.process.stderr, cap, self._output_overflow)
        self.stdout.start()
        self.stderr.start()
        self._memory_watch = _MemoryWatch(self)
        self._memory_watch.start()
        start = {
            "op": "start",
            "kind": self.harness.kind,
            "limits": asdict(self.limits),
            "source": self.source,
            "entry_point": self.entry_point,
        }
        reply, _ = self._exchange(start, START_TIMEOUT_S, "loading the solution")
        if not reply.get("ok"):
            raise self._failure_from(reply)

    def _output_overflow(self) -> None:
        self._limit_hit = Verdict.OUTPUT_LIMIT
        self.kill()

    def call(
        self, request: dict[str, Any], timeout_s: float, measure_cpu: bool = False
    ) -> tuple[dict[str, Any], int, int]:
        """Send one request; returns (reply, outside_ns, cpu_ns) or raises CandidateFailure.

        With ``measure_cpu`` the CPU time of the whole sandbox tree during the call is read
        from ``/proc`` (else ``cpu_ns`` is 0): a scan of ``/proc`` costs a few milliseconds,
        spent outside the timed window.
        """
        cpu_before_ns = self.cpu_ns(self._pids) if measure_cpu else 0
        reply, outside_ns = self._exchange(request, timeout_s, "a test")
        if not reply.get("ok"):
            raise self._failure_from(reply)
        cpu_used_ns = 0
        if measure_cpu:
            self._pids = self._tree()
            cpu_used_ns = self.cpu_ns(self._pids) - cpu_before_ns
        return reply, outside_ns, cpu_used_ns

    @staticmethod
    def cpu_ns(pids: list[int]) -> int:
        """CPU time used so far by every thread of ``pids`` (from /proc/PID/task/TID/schedstat)."""
        total = 0
        for pid in pids:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as schedstat:
                        total += int(schedstat.read().split()[0])
                except (OSError, ValueError, IndexError):
                    continue
        return total

    def _exchange(
        self, request: dict[str, Any], timeout_s: float, doing: str
    ) -> tuple[dict[str, Any], int]:
        deadline = min(time.monotonic() + timeout_s, self.deadline)
        started_ns = time.perf_counter_ns()
        try:
            message_send(self.control, request)
            reply = message_receive(self.control, deadline)
        except ChannelTimeout:
            self.kill()
            limit_s = min(timeout_s, self.limits.wall_time_s)
            raise CandidateFailure(
                Verdict.TIME_LIMIT, f"{doing} did not finish within {limit_s:g} s of wall clock"
            ) from None
        except (ChannelClosed, OSError):
            raise self._death(doing) from None
        except ChannelError as error:
            self.kill()
            raise CandidateFailure(
                Verdict.POLICY, f"the sandbox broke the result protocol: {error}"
            ) from None
        return reply, time.perf_counter_ns() - started_ns

    def _failure_from(self, reply: dict[str, Any]) -> CandidateFailure:
        allowed = {
            Verdict.COMPILE_ERROR,
            Verdict.RUNTIME_ERROR,
            Verdict.MEMORY_LIMIT,
            Verdict.GPU_OOM,
        }
        verdict = reply.get("verdict")
        verdict = Verdict(verdict) if verdict in allowed else Verdict.RUNTIME_ERROR
        return CandidateFailure(verdict, str(reply.get("message", ""))[:4000])

    def _death(self, doing: str) -> CandidateFailure:
        """Why the sandbox closed the channel: a limit, a crash, or an exit."""
        try:
            returncode = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            returncode = self.process.wait()
        if self._limit_hit is Verdict.OUTPUT_LIMIT:
            return CandidateFailure(
                Verdict.OUTPUT_LIMIT,
                f"printed more than {self.limits.output_bytes} bytes of output",
            )
        if self._limit_hit is Verdict.MEMORY_LIMIT:
            return CandidateFailure(
                Verdict.MEMORY_LIMIT,
                f"its processes together used more than {self.limits.memory_bytes} bytes of "
                f"memory during {doing}",
            )
        signal_number = -returncode if returncode < 0 else returncode - 128
        if signal_number == signal.SIGXCPU and returncode != 0:
            return CandidateFailure(
                Verdict.TIME_LIMIT,
                f"used more than {self.limits.cpu_time_s} s of CPU time during {doing}",
            )
        if 0 < signal_number < 64 and returncode != 0:
            name = signal.Signals(signal_number).name
            return CandidateFailure(Verdict.RUNTIME_ERROR, f"crashed with {name} during {doing}")
        return CandidateFailure(
            Verdict.RUNTIME_ERROR, f"the process exited with status {returncode} during {doing}"
        )

    def _tree(self) -> list[int]:
        """Host PIDs of every process of this sandbox (all descend from the bwrap we started)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
        tree, frontier = [], [self.process.pid]
        while frontier:
            pid = frontier.pop()
            tree.append(pid)
            frontier.extend(children.get(pid, []))
        return tree

    def _signal_tree(self, signal_number: int) -> None:
        # A stopped process cannot fork, so repeating until no new PID appears stops them all.
        signalled: set[int] = set()
        for _ in range(10):
            self._pids = self._tree()
            fresh = [pid for pid in self._pids if pid not in signalled]
            if not fresh:
                return
            for pid in fresh:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal_number)
            signalled.update(fresh)

    def freeze(self) -> None:
        """Stop every process of the sandbox while another solution is timed."""
        if self.alive() and not self.frozen:
            self._signal_tree(signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        if self.alive() and self.frozen:
            self._signal_tree(signal.SIGCONT)
        self.frozen = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the whole tree: the process group here, the PID namespace inside bwrap."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        if self.process is not None:
            self.thaw()
            if self.alive():
                with contextlib.suppress(OSError, ChannelError):
                    message_send(self.control, {"op": "exit"})
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=1)
            self.kill()
            self.process.wait()
            if self._memory_watch is not None:
                self._memory_watch.stop.set()
                self._memory_watch.join()
            for reader in (self.stdout, self.stderr):
                if reader is not None:
                    reader.join(timeout=5)
        for closeable in (self.control, self.shared):
            if closeable is not None:
                closeable.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def output(self) -> tuple[str, str]:
        """What the candidate printed (capped), for the report; never parsed."""
        return (
            self.stdout.text() if self.stdout else "",
            self.stderr.text() if self.stderr else "",
        )
