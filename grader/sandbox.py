"""Run candidate code in a fresh bubblewrap sandbox and talk to it over a private channel.

Each :class:`SandboxSession` is one fresh process tree under ``bwrap``: its own empty network
namespace, its own PID, IPC and UTS namespaces, a size-capped private ``/tmp``, read-only
system, Python and virtual environment (at neutral paths, ``/opt/python`` and ``/opt/venv``),
the harness package and nothing else of the project (no settings, no database, no ``var/``),
a scrubbed environment, a uid of its own (as root: one claimed from a private range for the
sandbox's life, so no other sandbox shares its process count; as a normal user: uid 65534 in
a user namespace of its own, which the kernel counts apart), a system-call filter
(:mod:`grader.seccomp`: no new namespaces, mounts, ptrace, ``setsid``/``setpgid`` ...),
rlimits on CPU time, address space, processes and file size (applied by the runner before
the candidate's code exists), the resident memory of the whole tree summed every 0.1 s
against the memory cap, a wall-clock limit per call and per run, stdout and stderr capped,
and the whole tree killed at the end (its process group, which the filter keeps every process
in, plus the PID namespace and ``--die-with-parent``). bwrap's own options travel through a
file descriptor (``--args``), so the sandbox's ``/proc/1/cmdline`` names no host path.

Where ``bwrap`` is missing or cannot create namespaces, the run falls back to a plain
subprocess with the same rlimits and every verdict says ``unsandboxed``; with ``DEBUG`` off
the app refuses to start that way (``grader/apps.py``). ``$INFERPREP_BWRAP`` names a ``bwrap``
binary that is not on ``PATH`` (one unpacked from Debian's package on a host without it).

A GPU problem's sandbox also gets the NVIDIA device nodes (``--dev-bind``), ``/sys`` read-only
(the driver reads its PCI devices there), the directory of the CUDA driver library read-only
and its path for Triton. Once per process a sandboxed child must see the GPU and run a Triton
kernel (:func:`gpu_sandbox_check`, ``python -m grader.sandbox --check-gpu``); where it cannot,
GPU problems run unsandboxed and their verdicts say so. Compiled kernels persist between runs
only for the problem's reference code (:func:`compile_cache_dir`).

This module imports no Django: the worker passes everything in.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import mmap
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
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
from grader.harnesses.timing import gpu_available, gpu_visible
from grader.seccomp import sandbox_filter

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where the harness package, the Python installation and the virtual environment appear
# inside the sandbox: paths that say nothing of the host's layout.
SANDBOX_CODE_DIR = "/opt/inferprep"
SANDBOX_PYTHON_DIR = "/opt/python"
SANDBOX_VENV_DIR = "/opt/venv"
# The uid a sandbox has inside its own user namespace when the worker is not root.
NOBODY_UID = 65534
# As root, each live sandbox runs as its own uid, SANDBOX_UID_BASE + 1 + slot: RLIMIT_NPROC
# counts processes per uid, so with one shared uid a sandbox that parked children made
# another's threads fail. The range starts where systemd's map of uids leaves a gap (after
# the container ranges, before 2^31); every sandbox uid shares the group SANDBOX_UID_BASE.
SANDBOX_UID_BASE = 0x70000000
SANDBOX_GID = SANDBOX_UID_BASE
# More slots than sandboxes that can live on one host (two per grade, a few grades per core).
SANDBOX_UID_SLOTS = 4096
# One lock file per slot, flock'ed for a sandbox's life by the worker process that owns it:
# host-wide, so every worker process on the host draws from the same pool.
UID_SLOT_DIR = Path("/run/inferprep/sandbox-uids")
# A killed sandbox's processes die within milliseconds; its uid is released only after.
SANDBOX_EXIT_TIMEOUT_S = 10.0
# Python start-up plus NumPy (or torch) import must fit in this before the first request.
START_TIMEOUT_S = 30.0
# A private /tmp large enough for a solution's scratch files, small enough not to fill RAM.
TMPFS_BYTES = 64 * 1024**2
# multiprocessing's locks and queues live in /dev/shm (POSIX semaphores); bwrap's /dev has
# one only root may write to.
SHM_BYTES = 16 * 1024**2
# A GPU problem's /tmp also holds Triton's cache of every kernel variant its tests compile
# (IR, PTX, cubin and a launcher each: tens of MB for a problem's nine tests).
GPU_TMPFS_BYTES = 512 * 1024**2
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
# Read-only in every sandbox; /sbin too, for the ``/sbin/ldconfig -p`` Triton runs when it is
# not told where the CUDA driver library is.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
DEV_DIR = Path("/dev")
# Where distributions and container runtimes put the CUDA driver library (libcuda.so.1).
DRIVER_LIBRARY_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/local/nvidia/lib64",
    "/usr/local/nvidia/lib",
    "/usr/lib/wsl/lib",
)
# Where a run of the reference finds its persistent kernel cache inside the sandbox.
COMPILE_CACHE_IN_SANDBOX = "/var/cache/inferprep-kernels"
# torch's import, the CUDA context and one Triton compile (gcc for the launcher, then ptxas).
GPU_PROBE_TIMEOUT_S = 180.0
_GPU_PROBE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from grader.harnesses.gpu_probe import main; main()"
)


def bwrap_path() -> str | None:
    """The bubblewrap binary: ``$INFERPREP_BWRAP`` when set (and executable), else ``bwrap``."""
    configured = os.environ.get("INFERPREP_BWRAP")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


def nvidia_device_nodes(dev_dir: Path = DEV_DIR) -> list[Path]:
    """The NVIDIA device nodes in ``dev_dir``: nvidia0.., nvidiactl, nvidia-uvm, nvidia-caps."""
    if not dev_dir.is_dir():
        return []
    return sorted(path for path in dev_dir.iterdir() if path.name.startswith("nvidia"))


def driver_library_dirs(
    maps: Path = Path("/proc/self/maps"), candidates: tuple[str, ...] = DRIVER_LIBRARY_DIRS
) -> list[str]:
    """Directories holding ``libcuda.so.1``: first where this process loaded it (the trusted
    side has, once torch initialised CUDA), then the usual places."""
    found = []
    with contextlib.suppress(OSError):
        for line in maps.read_text().splitlines():
            path = line.rsplit(maxsplit=1)[-1]
            if "/libcuda.so" in path:
                found.append(str(Path(path).parent))
    found += candidates
    return [
        directory
        for directory in dict.fromkeys(found)
        if (Path(directory) / "libcuda.so.1").exists()
    ]


def _gpu_env(driver_dirs: list[str]) -> dict[str, str]:
    """What CUDA and Triton need to be told in a scrubbed environment."""
    env = {}
    if driver_dirs:
        env["TRITON_LIBCUDA_PATH"] = driver_dirs[0]
        env["LD_LIBRARY_PATH"] = ":".join(driver_dirs)
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # a worker pinned to one card stays on it
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def compile_cache_dir(source: str) -> Path:
    """The persistent kernel-compile cache of exactly this source, writable by its sandbox.

    ``$INFERPREP_VAR_DIR/compile-cache/<sha256 of the source>``: only a sandbox running this
    very source is given it, so no other code can plant a kernel that a later run loads. As
    root it belongs to the sandboxes' shared group (each sandbox has its own uid), set-group-ID
    so that what one sandbox writes stays the group's, and the runner's umask keeps it
    writable by the next.
    """
    root = Path(os.environ.get("INFERPREP_VAR_DIR") or PROJECT_ROOT / "var") / "compile-cache"
    directory = root / hashlib.sha256(source.encode()).hexdigest()[:32]
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(directory, 0, SANDBOX_GID)
        directory.chmod(0o2770)
    else:
        directory.chmod(0o700)
    return directory


class UidSlot:
    """The uid one sandbox runs as, held by this process until :meth:`release`.

    As root, a uid of the private range whose slot file this process holds an exclusive
    ``flock`` on (the kernel drops it if the process dies); as a normal user, uid 65534 of
    the sandbox's own user namespace, which needs no claim.
    """

    def __init__(self, uid: int, lock_fd: int | None = None) -> None:
        self.uid = uid
        self._lock_fd = lock_fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> UidSlot:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def uid_slot_claim(directory: Path = UID_SLOT_DIR, slots: int = SANDBOX_UID_SLOTS) -> UidSlot:
    """Claim a uid no other live sandbox on this host has (as root; see :class:`UidSlot`).

    Slots are tried from a random one on, so a uid just released is rarely the next given.
    """
    if os.geteuid() != 0:
        return UidSlot(NOBODY_UID)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    first = random.randrange(slots)
    for step in range(slots):
        slot = (first + step) % slots
        lock_fd = os.open(directory / str(slot), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            continue
        return UidSlot(SANDBOX_UID_BASE + 1 + slot, lock_fd)
    raise RuntimeError(f"all {slots} sandbox uids in {directory} are in use")


@dataclass(frozen=True)
class SandboxInterpreter:
    """How the worker's Python appears inside the sandbox: what to bind where, and what to run.

    The installation (``sys.base_prefix``) is bound at ``/opt/python`` and the virtual
    environment's libraries at ``/opt/venv``, beside a ``pyvenv.cfg`` that points at the
    former: ``sys.executable``, ``sys.prefix`` and every module's ``__file__`` then name no
    host path. A shared ``libpython`` is found through ``LD_LIBRARY_PATH``, because the
    interpreter's own run path names the host's directory.
    """

    executable: str
    binds: tuple[tuple[str, str], ...] = ()
    symlinks: tuple[tuple[str, str], ...] = ()
    pyvenv_cfg: str | None = None
    library_dir: str | None = None


@lru_cache(maxsize=1)
def sandbox_interpreter() -> SandboxInterpreter:
    """The layout of :class:`SandboxInterpreter` for this process's Python (once per process).

    Where the interpreter binary does not live inside its installation, the installation and
    the environment are bound at their own paths instead.
    """
    base = Path(sys.base_prefix).resolve()
    binary = Path(sys.executable).resolve()
    if not binary.is_relative_to(base):
        prefixes = sorted({sys.base_prefix, sys.prefix})
        return SandboxInterpreter(sys.executable, tuple((p, p) for p in prefixes))
    executable = f"{SANDBOX_PYTHON_DIR}/{binary.relative_to(base)}"
    binds = [(str(base), SANDBOX_PYTHON_DIR)]
    library_dir = None
    libdir = Path(sysconfig.get_config_var("LIBDIR") or "/").resolve()
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir.is_relative_to(base):
        library_dir = f"{SANDBOX_PYTHON_DIR}/{libdir.relative_to(base)}"
    if sys.prefix == sys.base_prefix:
        return SandboxInterpreter(executable, tuple(binds), library_dir=library_dir)
    venv = Path(sys.prefix)
    symlinks = [(executable, f"{SANDBOX_VENV_DIR}/bin/python3")]
    for name in ("lib", "lib64"):  # a venv's lib64 is often a relative link to lib
        if (venv / name).is_symlink():
            if not os.path.isabs(os.readlink(venv / name)):
                symlinks.append((os.readlink(venv / name), f"{SANDBOX_VENV_DIR}/{name}"))
        elif (venv / name).is_dir():
            binds.append((str(venv / name), f"{SANDBOX_VENV_DIR}/{name}"))
    kept = [
        line
        for line in (venv / "pyvenv.cfg").read_text().splitlines()
        if line.partition("=")[0].strip() in ("include-system-site-packages", "version")
    ]
    home = f"{SANDBOX_PYTHON_DIR}/{binary.parent.relative_to(base)}"
    return SandboxInterpreter(
        executable=f"{SANDBOX_VENV_DIR}/bin/python3",
        binds=tuple(binds),
        symlinks=tuple(symlinks),
        pyvenv_cfg="\n".join([f"home = {home}", *kept]) + "\n",
        library_dir=library_dir,
    )


class ChildFiles:
    """Files a child process reads from inherited descriptors (memfds), closed here once it
    has started: bwrap's options, the seccomp filter, generated files."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def data(self, content: bytes) -> int:
        fd = os.memfd_create("inferprep-sandbox", os.MFD_CLOEXEC)
        self.fds.append(fd)
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()

    def __enter__(self) -> ChildFiles:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@lru_cache(maxsize=1)
def _seccomp_program() -> bytes:
    return sandbox_filter()


#: What every sandbox sees of the project, besides its harness kind's ``sandbox_paths``.
HARNESS_PATHS = ("grader/__init__.py", "grader/harnesses")


def sandbox_code_paths(harness_paths: tuple[str, ...]) -> tuple[str, ...]:
    """The project paths (files or folders, relative to the project root) a sandbox sees."""
    return (*HARNESS_PATHS, *harness_paths)


def _bwrap_options(
    paths: tuple[str, ...],
    files: ChildFiles,
    *,
    gpu: bool = False,
    compile_cache: Path | None = None,
    dev_dir: Path = DEV_DIR,
    driver_dirs: list[str] | None = None,
) -> list[str]:
    """bwrap's options (everything before the program), which travel through ``--args``.

    ``paths``: the project files and folders the harness kind needs besides the harness package
    (``Harness.sandbox_paths``), bound read-only under ``SANDBOX_CODE_DIR``. ``files`` receives
    the seccomp filter and the generated ``pyvenv.cfg``. ``gpu`` adds the NVIDIA device nodes
    found in ``dev_dir``, ``/sys`` and the driver library's directories (``driver_dirs``, found
    when not given).
    """
    # /tmp first: a virtual environment that lives under /tmp is bound on top of it, not hidden.
    tmpfs_bytes = GPU_TMPFS_BYTES if gpu else TMPFS_BYTES
    options = ["--size", str(tmpfs_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    for system_dir in (*SYSTEM_DIRS, "/etc/ld.so.cache"):
        options += ["--ro-bind-try", system_dir, system_dir]
    created: set[str] = {"/", *SYSTEM_DIRS, "/etc", "/tmp"}

    def parents_make(target: str) -> None:
        parents = [p for p in reversed(Path(target).parents) if str(p) not in created]
        for parent in parents:  # bwrap would make them 0700, unreadable to the sandbox's uid
            options.extend(["--perms", "0755", "--dir", str(parent)])
            created.add(str(parent))

    def bind(source: Path, target: str, writable: bool = False) -> None:
        parents_make(target)
        options.extend(["--bind" if writable else "--ro-bind", str(source), target])
        created.add(target)

    interpreter = sandbox_interpreter()
    for source, target in interpreter.binds:
        bind(Path(source), target)
    for link_target, link in interpreter.symlinks:
        parents_make(link)
        options.extend(["--symlink", link_target, link])
    if interpreter.pyvenv_cfg is not None:
        config = f"{SANDBOX_VENV_DIR}/pyvenv.cfg"
        parents_make(config)
        config_fd = files.data(interpreter.pyvenv_cfg.encode())
        options.extend(["--perms", "0444", "--ro-bind-data", str(config_fd), config])
    for path in sandbox_code_paths(paths):
        bind(PROJECT_ROOT / path, f"{SANDBOX_CODE_DIR}/{path}")
    if compile_cache is not None:
        bind(compile_cache, COMPILE_CACHE_IN_SANDBOX, writable=True)
    options += ["--dev", "/dev", "--size", str(SHM_BYTES), "--perms", "1777"]
    options += ["--tmpfs", "/dev/shm"]
    if gpu:
        driver_dirs = driver_library_dirs() if driver_dirs is None else driver_dirs
        # --dev-bind: the /dev that --dev makes is mounted nodev, so a plain bind of a device
        # node cannot be opened. Without /sys, cuInit fails (304, "OS call failed").
        for node in nvidia_device_nodes(dev_dir):
            options += ["--dev-bind", str(node), f"/dev/{node.name}"]
        options += ["--ro-bind-try", "/sys", "/sys"]
        bound = [Path(root).resolve() for root in SYSTEM_DIRS]
        for directory in driver_dirs:
            if not any(Path(directory).resolve().is_relative_to(root) for root in bound):
                bind(Path(directory), directory)
    options += ["--proc", "/proc"]
    options += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    options += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    # No --new-session: every process stays in the process group the trusted side gave bwrap,
    # which :meth:`SandboxSession.freeze` signals. The sandbox has no controlling terminal to
    # inject input into (bwrap starts in a new session, stdin is /dev/null).
    options += ["--die-with-parent", "--clearenv", "--chdir", "/tmp"]
    options += ["--seccomp", str(files.data(_seccomp_program()))]
    env = _sandbox_env("/tmp", COMPILE_CACHE_IN_SANDBOX if compile_cache is not None else None)
    if gpu:
        env |= _gpu_env(driver_dirs)
    if interpreter.library_dir is not None:
        library_path = [env["LD_LIBRARY_PATH"]] if "LD_LIBRARY_PATH" in env else []
        env["LD_LIBRARY_PATH"] = ":".join([*library_path, interpreter.library_dir])
    for name, value in env.items():
        options += ["--setenv", name, value]
    if os.geteuid() != 0:
        options += ["--unshare-user", "--uid", str(NOBODY_UID), "--gid", str(NOBODY_UID)]
    return options


def _privileges_drop(uid: int) -> list[str]:
    """As root, what the sandbox's program runs under: its own uid, the sandboxes' group, no
    capabilities, ``no_new_privs`` (a normal user's sandbox has its uid from bwrap)."""
    if os.geteuid() != 0:
        return []
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={SANDBOX_GID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def sandbox_argv(
    program: list[str], files: ChildFiles, uid: int, paths: tuple[str, ...] = (), **layout: Any
) -> list[str]:
    """The command line of a sandbox running ``program`` as ``uid``: ``bwrap --args FD --
    [setpriv ...] PROGRAM``, run with ``executable=bwrap_path()`` and ``files.fds`` passed.

    ``paths`` and ``layout``: what :func:`_bwrap_options` takes.
    """
    options = _bwrap_options(paths, files, **layout)
    options_fd = files.data(b"".join(option.encode() + b"\0" for option in options))
    return ["bwrap", "--args", str(options_fd), "--", *_privileges_drop(uid), *program]


def sandbox_run(
    program: list[str], timeout_s: float, **layout: Any
) -> subprocess.CompletedProcess[str]:
    """Run trusted ``program`` to its end in a fresh sandbox (the probes' and tests' way in)."""
    with uid_slot_claim() as slot, ChildFiles() as files:
        return subprocess.run(
            sandbox_argv(program, files, slot.uid, **layout),
            executable=bwrap_path(),
            pass_fds=files.fds,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            start_new_session=True,
            check=False,
        )


def _code_copy(paths: tuple[str, ...], target: Path) -> Path:
    """Copy what a sandbox would see of the project to ``target``: an unsandboxed run imports
    the same modules as a sandboxed one, and nothing else of the project."""
    for path in sandbox_code_paths(paths):
        source, destination = PROJECT_ROOT / path, target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination)
    return target


def _sandbox_env(tmp_dir: str, triton_cache: str | None = None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": tmp_dir, "TMPDIR": tmp_dir, "LANG": "C.UTF-8"}
    if triton_cache is not None:
        env["TRITON_CACHE_DIR"] = triton_cache
    return env | THREAD_ENV


# Prints the uid the program runs as and its seccomp mode (2: a filter).
_KIND_PROBE = (
    "import os; status = open('/proc/self/status').read().split('Seccomp:')[1].split()[0]; "
    "print(os.getuid(), status)"
)


def _is_sandbox_uid(uid: int) -> bool:
    if os.geteuid() != 0:
        return uid == NOBODY_UID
    return SANDBOX_UID_BASE < uid <= SANDBOX_UID_BASE + SANDBOX_UID_SLOTS


@lru_cache(maxsize=1)
def sandbox_kind() -> SandboxKind:
    """Whether bubblewrap is installed and really works here, with a uid of the sandbox's own
    and the system-call filter (probed once per process)."""
    if bwrap_path() is None or (os.geteuid() == 0 and shutil.which("setpriv") is None):
        return SandboxKind.UNSANDBOXED
    probe = [sandbox_interpreter().executable, "-I", "-c", _KIND_PROBE]
    try:
        result = sandbox_run(probe, START_TIMEOUT_S)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
        logger.warning("bubblewrap cannot run a sandbox here: %s", error)
        return SandboxKind.UNSANDBOXED
    uid, _, seccomp_mode = result.stdout.strip().partition(" ")
    own_uid = uid.isdigit() and _is_sandbox_uid(int(uid))
    if result.returncode == 0 and own_uid and seccomp_mode == "2":
        return SandboxKind.BUBBLEWRAP
    logger.warning("bubblewrap's probe failed: %s", (result.stderr or result.stdout)[-2000:])
    return SandboxKind.UNSANDBOXED


@lru_cache(maxsize=1)
def gpu_sandbox_check() -> dict[str, Any]:
    """Whether a sandboxed child reaches the GPU: torch sees it and a Triton kernel runs.

    Once per process (a few seconds), before the first GPU sandbox. ``ok`` false with a
    ``reason`` means GPU problems run unsandboxed here. CUDA starts in this process first: as
    root that creates device nodes the driver makes on first use (nvidia-uvm), and it loads
    the driver library whose folder the sandbox is given.
    """
    if not gpu_available():
        return {"ok": False, "sandbox": str(sandbox_kind()), "reason": "torch sees no GPU here"}
    nodes = nvidia_device_nodes()
    driver_dirs = driver_library_dirs()
    check: dict[str, Any] = {
        "ok": False,
        "bwrap": bwrap_path(),
        "sandbox": str(sandbox_kind()),
        "device_nodes": [str(node) for node in nodes],
        "driver_library_dirs": driver_dirs,
    }
    if sandbox_kind() is not SandboxKind.BUBBLEWRAP:
        return check | {"reason": "bubblewrap is missing or cannot create namespaces here"}
    if not nodes:
        return check | {"reason": f"no NVIDIA device nodes in {DEV_DIR}"}
    program = [sandbox_interpreter().executable, "-I", "-B", "-c", _GPU_PROBE, SANDBOX_CODE_DIR]
    started = time.monotonic()
    try:
        result = sandbox_run(program, GPU_PROBE_TIMEOUT_S, gpu=True, driver_dirs=driver_dirs)
    except subprocess.TimeoutExpired:
        return check | {"reason": f"the sandboxed child took over {GPU_PROBE_TIMEOUT_S:g} s"}
    check["seconds"] = round(time.monotonic() - started, 2)
    lines = result.stdout.strip().splitlines()
    try:
        child = json.loads(lines[-1]) if lines else {}
    except ValueError:
        child = {}
    check["child"] = child
    check["ok"] = bool(child.get("cuda") and child.get("triton_ok"))
    if not check["ok"]:
        check["reason"] = (
            child.get("error") or result.stderr[-2000:] or f"exit status {result.returncode}"
        )
    return check


def session_kind(needs_gpu: bool) -> SandboxKind:
    """How a run is isolated: bubblewrap where it works, and for a GPU problem only where a
    sandboxed child reaches the card; else unsandboxed (every verdict says which)."""
    kind = sandbox_kind()
    if needs_gpu and kind is SandboxKind.BUBBLEWRAP and gpu_visible():
        check = gpu_sandbox_check()
        if not check["ok"]:
            logger.warning("GPU problems run unsandboxed: %s", check["reason"])
            return SandboxKind.UNSANDBOXED
    return kind


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


def process_tree(root_pid: int) -> list[int]:
    """Host PIDs of ``root_pid`` and every process descending from it, read from /proc."""
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
    tree, frontier = [], [root_pid]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier.extend(children.get(pid, []))
    return tree


class SandboxSession:
    """One fresh sandboxed process running a harness kind's in-sandbox half on one solution.

    Use as a context manager; :meth:`start` loads the source (raising
    :class:`CandidateFailure` for a compile or import error), :meth:`call` sends one request.
    """

    def __init__(
        self,
        harness: type[Harness],
        source: str,
        entry_point: str,
        limits: Limits,
        compile_cache: Path | None = None,
        extra_paths: tuple[str, ...] = (),
    ) -> None:
        """``compile_cache``: a directory of :func:`compile_cache_dir`, given only to a run of
        the very source it belongs to. ``extra_paths``: project paths this run sees besides
        its kind's (a trusted baseline's, never a candidate's)."""
        self.harness = harness
        self.source = source
        self.entry_point = entry_point
        self.limits = limits
        self.compile_cache = compile_cache
        self.paths = (*harness.sandbox_paths, *extra_paths)
        self.kind = session_kind(harness.needs_gpu)
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
        self._uid_slot: UidSlot | None = None
        # A pidfd of the PID namespace's init, taken when the sandbox is killed: the namespace
        # is empty once it has exited, and only then is the sandbox's uid given back.
        self._init_pidfd: int | None = None
        self._kill_lock = threading.Lock()

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
        gpu = self.harness.needs_gpu and gpu_visible()
        files = ChildFiles()
        executable = None
        try:
            if self.kind is SandboxKind.BUBBLEWRAP:
                self._uid_slot = uid_slot_claim()
                command = sandbox_argv(
                    [
                        sandbox_interpreter().executable,
                        *program,
                        SANDBOX_CODE_DIR,
                        *map(str, passed),
                    ],
                    files,
                    self._uid_slot.uid,
                    paths=self.paths,
                    gpu=gpu,
                    compile_cache=self.compile_cache,
                )
                executable = bwrap_path()
                env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="inferprep-run-")
                code_dir = _code_copy(self.paths, Path(self._tmp.name) / "code")
                command = [sys.executable, *program, str(code_dir), *map(str, passed)]
                cache = str(self.compile_cache) if self.compile_cache is not None else None
                env = _sandbox_env(self._tmp.name, cache)
                if gpu:
                    env |= _gpu_env(driver_library_dirs())
                cwd = self._tmp.name
            # A session of its own: its process group is what freeze, thaw and kill signal.
            self.process = subprocess.Popen(
                command,
                executable=executable,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(*passed, *files.fds),
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            sandbox_end.close()
            os.close(shared_fd)
            files.close()
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
        reply = self._exchange(start, START_TIMEOUT_S, "loading the solution")
        if not reply.get("ok"):
            raise self._failure_from(reply)

    def _output_overflow(self) -> None:
        self._limit_hit = Verdict.OUTPUT_LIMIT
        self.kill()

    def call(self, request: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], int]:
        """Wake the sandbox if frozen, send one request and wait for the whole reply; returns
        (reply, outside_ns) or raises CandidateFailure.

        ``outside_ns`` is this process's wall clock from waking the sandbox to receiving the
        reply: the trusted measurement of the call. A harness that freezes the sandbox after
        each reply (:meth:`freeze`) leaves it no moment to work outside this window.
        """
        started_ns = time.perf_counter_ns()
        self.thaw()
        reply = self._exchange(request, timeout_s, "a test")
        outside_ns = time.perf_counter_ns() - started_ns
        if not reply.get("ok"):
            raise self._failure_from(reply)
        return reply, outside_ns

    def _exchange(self, request: dict[str, Any], timeout_s: float, doing: str) -> dict[str, Any]:
        deadline = min(time.monotonic() + timeout_s, self.deadline)
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
        return reply

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
        return process_tree(self.process.pid)

    def _signal_group(self, signal_number: int) -> None:
        """Signal every process of the sandbox at once: bwrap's process group, which the
        system-call filter keeps them all in (``setsid`` and ``setpgid`` are refused) and which
        a fork cannot escape (the kernel delivers a group signal to a child being forked).

        The group's id is bwrap's pid, which stays this session's until it is reaped here.
        """
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal_number)

    def pids(self) -> list[int]:
        """Host PIDs of every live process of this sandbox."""
        return self._tree() if self.alive() else []

    def freeze(self) -> None:
        """Stop every process of the sandbox while another solution is timed (one signal)."""
        if self.alive() and not self.frozen:
            self._signal_group(signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        """Resume what :meth:`freeze` stopped."""
        if self.alive() and self.frozen:
            self._signal_group(signal.SIGCONT)
        self.frozen = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the whole tree: its process group, and with it the PID namespace's init."""
        with self._kill_lock:
            if self._uid_slot is not None and self._init_pidfd is None and self.alive():
                self._init_pidfd = self._namespace_init_pidfd()
            self._signal_group(signal.SIGKILL)

    def _namespace_init_pidfd(self) -> int | None:
        """A pidfd of the PID namespace's init, bwrap's only child (None once it is gone)."""
        pid = self.process.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                init_pid = int(children.read().split()[0])
            return os.pidfd_open(init_pid)
        except (OSError, ValueError, IndexError):
            return None

    def _uid_release(self) -> None:
        """Give the sandbox's uid back once none of its processes is left.

        Left alone, bwrap exits after the namespace's init, which exits after every other
        process of the namespace; a kill reaches them all at once, so then the init's exit
        is awaited (a pidfd turns readable once the process has exited).
        """
        if self._init_pidfd is not None:
            exited = select.poll()
            exited.register(self._init_pidfd, select.POLLIN)
            gone = bool(exited.poll(SANDBOX_EXIT_TIMEOUT_S * 1000))
            os.close(self._init_pidfd)
            self._init_pidfd = None
            if not gone:
                logger.error("sandbox uid %d kept: its namespace did not end", self._uid_slot.uid)
                return
        self._uid_slot.release()

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
        if self._uid_slot is not None:
            self._uid_release()
        if self._tmp is not None:
            self._tmp.cleanup()

    def output(self) -> tuple[str, str]:
        """What the candidate printed (capped), for the report; never parsed."""
        return (
            self.stdout.text() if self.stdout else "",
            self.stderr.text() if self.stderr else "",
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.sandbox --check-gpu``: does a sandboxed child see the GPU? (JSON)"""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--check-gpu", action="store_true", required=True)
    parser.parse_args(argv)
    check = gpu_sandbox_check()
    print(json.dumps(check, indent=1))
    verdict = "yes" if check["ok"] else f"no ({check.get('reason', '')[:300]})"
    print(f"a sandboxed child sees the GPU and runs a Triton kernel: {verdict}")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
