"""The ``tensor_parallel`` kind: the candidate's ``TensorParallelMLP`` on two ranks.

In the sandbox, the harness's process is rank 0; at the first set-up it forks rank 1 and both
join a ``torch.distributed`` process group (gloo over the sandbox's own loopback, rendezvous
through a file in its private ``/tmp``; NCCL with rank ``r`` on ``cuda:r`` in the GPU tier).
The sandbox keeps ``--unshare-net``: its loopback is a network namespace of its own, and
nothing outside it can be reached. Every request goes to both ranks; each writes its own
output to its own place in the shared memory (``grader/harnesses/remote.py``'s layout).

The trusted side draws the weights and every input from the secret seed and judges:

* every rank's output of every call (tests and timed calls) against the single-device MLP of
  ``oracle.py``, computed here in float64 on the same weights and input;
* the split of the work: the CPU time each rank's process used during the forward passes,
  read from ``/proc`` here. A rank that did under ``MIN_RANK_SHARE`` of the ranks' CPU time
  (rank 0 computing everything and sending the result) is ``policy``.

The timed call is one forward pass on a fresh input, timed by the trusted clock from waking
the sandbox to the reply (both ranks done). The ``balance`` test also times all-reduces of the
output's size alone, and shows the all-reduce's share of a forward pass (display only: it is
the sandbox's harness that runs them).
"""

from __future__ import annotations

import contextlib
import datetime
import mmap
import os
import random
import signal
import socket
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import CandidateFailure, oracle_load
from grader.harnesses.channel import message_receive, message_send
from grader.harnesses.contract import CallTiming, Verdict
from grader.harnesses.engine_run import CaseResult, EngineHarness, fail, one_thread
from grader.harnesses.registry import register
from grader.harnesses.remote import (
    Arena,
    Slot,
    slot_bytes,
    tensor_view,
    tensor_write,
)
from grader.harnesses.timing import TimedCall

if TYPE_CHECKING:
    import numpy as np

    from grader.sandbox import SandboxSession

WORLD_SIZE = 2
# A rank whose process used less than this share of the ranks' CPU time during the forward
# passes did not compute its shard (an even split is 0.5; honest runs measured 0.45-0.55).
MIN_RANK_SHARE = 0.25
# The CPU time (clock ticks, 10 ms each) the forward passes must have used before the split
# is judged: below it the count is a few ticks of noise. The balance test's 12 passes give an
# honest pair about 30, the timed calls 10-30 more.
MIN_JUDGED_TICKS = 15
# A collective one rank waits in while the other has failed gives up after this long, so the
# failure is reported (a test has 30 s).
COLLECTIVE_TIMEOUT_S = 10
# Where the in-sandbox half keeps its second rank between requests.
_peer: dict[str, Any] = {}


def _rank_prepare(request: dict[str, Any], rank: int) -> None:
    """In the sandbox: join the process group (once per process)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    # The sandbox's loopback is its own network namespace; gloo and NCCL talk over it.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    # Untried in a sandbox on two cards: the system-call filter refuses pidfd_getfd, which
    # NCCL's cuMem handles may be passed with (legacy CUDA IPC handles need none), and /dev/shm
    # is 16 MiB (peer-to-peer over NVLink needs no shared-memory transport).
    os.environ.setdefault("NCCL_CUMEM_ENABLE", "0")
    os.environ.setdefault("NCCL_SHM_DISABLE", "1")
    backend = request["backend"]
    if backend == "nccl":
        import torch

        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend,
        init_method=f"file://{os.environ.get('TMPDIR', '/tmp')}/tp-rendezvous",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S),
    )


def _rank_serve(entry: Any, request: dict[str, Any], shared: mmap.mmap, rank: int) -> str | None:
    """In the sandbox: one rank's part of a request; None, or why its output could not be
    written."""
    import torch
    import torch.distributed as dist

    op = request["op"]
    if op == "setup":
        _rank_prepare(request, rank)
        # copies of its own, as a loader reads a checkpoint: the shared memory is the next
        # request's
        weights = [tensor_view(shared, request[name]).clone() for name in ("gate", "up", "down")]
        _peer["module"] = entry(*weights, rank, WORLD_SIZE)
        return None
    module = _peer["module"]
    device = torch.device("cuda", rank) if request["backend"] == "nccl" else torch.device("cpu")
    x = tensor_view(shared, request["x"]).to(device)
    if op == "allreduce":
        dist.all_reduce(torch.zeros_like(x))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return None
    y = module.forward(x)
    if isinstance(y, torch.Tensor) and y.device.type == "cuda":
        y = y.float().cpu()
    return tensor_write(shared, request["y"][rank], y, f"rank {rank}'s forward()")


def _rank_one_loop(entry: Any, shared: mmap.mmap, link: socket.socket) -> None:
    """In the sandbox, the forked rank 1: serve what rank 0 forwards until it goes away."""
    while True:
        try:
            request = message_receive(link)
        except Exception:
            os._exit(0)
        try:
            reply = {"ok": True, "error": _rank_serve(entry, request, shared, 1)}
        except BaseException as error:
            reply = _failure(error, 1)
        message_send(link, reply)


def _failure(error: BaseException, rank: int) -> dict[str, Any]:
    """In the sandbox: a rank's exception as the runner reports one (the solution's frames)."""
    from grader.harnesses.runner import candidate_traceback, failure_verdict

    message = f"rank {rank}: {candidate_traceback(error)}"
    return {"ok": False, "verdict": str(failure_verdict(error)), "message": message}


def _rank_one_start(entry: Any, shared: mmap.mmap) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            _rank_one_loop(entry, shared, theirs)
        finally:
            os._exit(0)
    theirs.close()
    _peer.update(link=ours, pid=pid)


def rank_cpu_ticks(session: SandboxSession) -> list[int]:
    """User + system clock ticks of each rank's process, rank 0 (the harness's process) first,
    then every other process the solution started; bwrap's own are left out."""
    stats = {}
    for pid in session.pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                head, tail = stat.read().rsplit(b")", 1)
        except OSError:
            continue
        if head.endswith(b"(bwrap"):
            continue
        fields = tail.split()
        stats[pid] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    roots = [pid for pid, (parent, _) in stats.items() if parent not in stats]
    ordered = sorted(stats, key=lambda pid: (pid not in roots, pid))
    return [stats[pid][1] for pid in ordered]


class CpuSplit:
    """The CPU time of rank 0 and of the rest, summed over the forward passes it watched."""

    def __init__(self) -> None:
        self.rank0 = self.others = 0

    def around(self, session: SandboxSession, call) -> Any:
        before = rank_cpu_ticks(session)
        result = call()
        after = rank_cpu_ticks(session)
        if len(after) >= 1 and len(before) >= 1:
            self.rank0 += after[0] - before[0]
            self.others += max(sum(after[1:]) - sum(before[1:]), 0)
        return result

    def check(self, where: str) -> dict[str, Any]:
        """Raise ``policy`` when one side did too little of the work; returns the figures."""
        total = self.rank0 + self.others
        figures = {"rank0_cpu_ticks": self.rank0, "other_ranks_cpu_ticks": self.others}
        if total < MIN_JUDGED_TICKS:
            return figures
        share = min(self.rank0, self.others) / total
        if share < MIN_RANK_SHARE:
            idle = "rank 0" if self.rank0 < self.others else "rank 1"
            raise CandidateFailure(
                Verdict.POLICY,
                f"{where}: {idle} used {share:.0%} of the ranks' CPU time during the forward "
                f"passes ({self.rank0} ticks on rank 0, {self.others} on the rest): each rank "
                "must compute its own shard",
                figures,
            )
        return figures


@register
class TensorParallelHarness(EngineHarness):
    kind = "tensor_parallel"
    version = "1"
    # The interface only: the candidate needs nothing of the engine's implementations.
    sandbox_paths = ("engine/__init__.py", "engine/tensor_parallel.py")
    backend = "gloo"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.expected = oracle_load(spec.oracle_code, ("expected",))["expected"]
        self.timed_split = CpuSplit()

    def shared_bytes(self) -> int:
        sizes = []
        for case in [*self.spec.tests, self.spec.benchmark]:
            tokens, hidden, inter = (int(case[k]) for k in ("tokens", "hidden", "intermediate"))
            weights = 2 * slot_bytes("float32", inter, hidden) + slot_bytes(
                "float32", hidden, inter
            )
            sizes.append(weights + (1 + WORLD_SIZE) * slot_bytes("float32", tokens, hidden))
        return max(sizes)

    def _setup(self, session, case, rng) -> tuple[np.ndarray, ...]:
        """Fresh weights to both ranks; returns them as the oracle takes them (float64 copies
        of what was sent, made once per set-up, not once per check)."""
        import torch

        generator = torch.Generator().manual_seed(rng.randrange(2**62))
        hidden, inter = int(case["hidden"]), int(case["intermediate"])
        gate = torch.randn(inter, hidden, generator=generator).div_(hidden**0.5)
        up = torch.randn(inter, hidden, generator=generator).div_(hidden**0.5)
        down = torch.randn(hidden, inter, generator=generator).div_(inter**0.5)
        arena = Arena(session)
        weights = {"gate": gate, "up": up, "down": down}
        places = {name: arena.put(weight) for name, weight in weights.items()}
        arena.exchange("setup", [], self.timeout_s(case), self._request(places))
        return tuple(weight.double().numpy() for weight in (gate, up, down))

    def _request(self, places: dict[str, Any]) -> dict[str, Any]:
        return {"backend": self.backend} | {
            name: [slot.as_json() for slot in place] if isinstance(place, list) else place.as_json()
            for name, place in places.items()
        }

    def _forward(self, session, case, rng, weights, split: CpuSplit, op: str = "forward"):
        """One call on a fresh input: (every rank's output, the input, the timing)."""
        import torch

        generator = torch.Generator().manual_seed(rng.randrange(2**62))
        x = torch.randn(int(case["tokens"]), int(case["hidden"]), generator=generator)
        arena = Arena(session)
        x_place = arena.put(x)
        outputs: list[Slot] = [arena.output("float32", *x.shape) for _ in range(WORLD_SIZE)]
        request = self._request({"x": x_place, "y": outputs})
        reply, timing = split.around(
            session, lambda: arena.exchange(op, [], self.timeout_s(case), request)
        )
        if op != "forward":
            return [], x, timing
        for error in (reply.get("errors") or [])[:WORLD_SIZE]:
            if error:  # the rank's output was not a tensor of the right shape and dtype
                raise fail(str(error)[:300])
        return [arena.read(slot) for slot in outputs], x, timing

    def _check(self, outputs, x, weights, where: str) -> None:
        import torch

        want = torch.from_numpy(self.expected(x.numpy(), *weights))
        tolerance = self.spec.tolerance.get("float32", {"rtol": 1e-4, "atol": 1e-4})
        for rank, got in enumerate(outputs):
            error = (got.double() - want).abs()
            bad = ~(error <= tolerance["atol"] + tolerance["rtol"] * want.abs())
            if bool(bad.any()):
                token, column = (int(i) for i in bad.nonzero()[0])
                if bool(got.isnan().all()):
                    raise fail(f"{where}rank {rank} wrote no output")
                ratio = float(got.double().norm() / want.norm())
                raise fail(
                    f"{where}rank {rank}'s output differs from the single-device MLP at "
                    f"[{token}, {column}]: {float(got[token, column]):.6g}, expected "
                    f"{float(want[token, column]):.6g}; {int(bad.sum())} of {bad.numel()} values "
                    f"wrong, max error {float(error.max()):.3g}, norm {ratio:.3f} of the "
                    "expected"
                )

    def split_check(
        self, session: SandboxSession, case: dict[str, Any], split: CpuSplit, where: str
    ) -> dict[str, Any]:
        """Whether each rank did its shard's work: on the CPU, its process's CPU time."""
        return split.check(where)

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        with one_thread():
            weights = self._setup(session, case, rng)
            split, elapsed_ns = CpuSplit(), 0
            calls = int(case.get("calls", 1))
            for call in range(calls):
                outputs, x, timing = self._forward(session, case, rng, weights, split)
                self._check(outputs, x, weights, f"call {call + 1} of {calls}: ")
                elapsed_ns += timing.outside_ns
            details: dict[str, Any] = {"calls": calls, "forward_ms": elapsed_ns / calls / 1e6}
            message = f"both ranks equal the single-device MLP in {calls} calls"
            if case.get("mode") == "balance":
                details |= self.split_check(session, case, split, f"{calls} forward passes")
                reduce_ns = sum(
                    self._forward(session, case, rng, weights, CpuSplit(), "allreduce")[
                        2
                    ].outside_ns
                    for _ in range(calls)
                )
                share = reduce_ns / max(elapsed_ns, 1)
                details |= {"allreduce_ms": reduce_ns / calls / 1e6, "allreduce_share": share}
                message += (
                    f"; rank 0 used {split.rank0} and rank 1 {split.others} CPU ticks; a "
                    f"forward pass took {elapsed_ns / calls / 1e6:.2f} ms and an all-reduce of "
                    f"its output alone {reduce_ns / calls / 1e6:.2f} ms ({share:.0%}, each "
                    "exchange's overhead included)"
                )
            return CaseResult(CallTiming(0, elapsed_ns), message, details)

    def timed_call(self, session: SandboxSession, seed: int) -> TimedCall:
        case = self.spec.benchmark
        with one_thread():
            weights = self._setup(session, case, self.rng(seed))
        calls = 0

        def call() -> CallTiming:
            nonlocal calls
            calls += 1
            where = f"timed call {calls}: "
            with one_thread():
                outputs, x, timing = self._forward(
                    session, case, self.rng(seed), weights, self.timed_split
                )
                if self.checks_timed_outputs:  # off for the reference's (our code) only
                    self._check(outputs, x, weights, where)
            self.split_check(session, case, self.timed_split, f"timed calls 1-{calls}")
            return timing

        return call

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        """Both ranks serve each request; once a rank has failed, the pair is gone (a rank
        left waiting in a collective cannot be trusted to be in step) and every later
        request fails with the first failure."""
        if "failed" in _peer:
            return _peer["failed"]
        if "link" not in _peer:
            _rank_one_start(entry, shared)
        link = _peer["link"]
        message_send(link, request)
        try:
            error = _rank_serve(entry, request, shared, 0)
            theirs = message_receive(link)
        except BaseException as failure:
            theirs = _failure(failure, 0)
        if not theirs.get("ok"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(_peer["pid"], signal.SIGKILL)
            _peer["failed"] = theirs
            return theirs
        return {"ok": True, "errors": [error, theirs.get("error")]}


def card_bytes(pids: list[int]) -> list[int] | None:
    """Device memory the driver says these host processes hold on each card they use, in the
    cards' order, or None where it cannot say (no NVML, no per-process accounting)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        held = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            held.append(sum(p.usedGpuMemory or 0 for p in processes if p.pid in set(pids)))
    except Exception:  # no bindings, no driver, no per-process accounting: not measured
        return None
    used = [bytes_held for bytes_held in held if bytes_held]
    return used if len(used) == WORLD_SIZE else None


@register
class TensorParallelGpuHarness(TensorParallelHarness):
    """The GPU tier: the same checks with NCCL, rank ``r`` on ``cuda:r`` (two cards). The
    split of the work is judged on the device memory each card holds for the sandbox, read
    from the driver: the ranks are symmetric, so an honest pair holds about the same, and a
    rank 0 that kept the whole weights holds a shard's worth more. CPU time is shown only (a
    rank's host thread spins while it waits on its card)."""

    kind = "tensor_parallel_gpu"
    needs_gpu = True
    backend = "nccl"

    def split_check(
        self, session: SandboxSession, case: dict[str, Any], split: CpuSplit, where: str
    ) -> dict[str, Any]:
        figures = {"rank0_cpu_ticks": split.rank0, "other_ranks_cpu_ticks": split.others}
        held = card_bytes(session.pids())
        if held is None:
            return figures | {"card_bytes": None}
        hidden, inter = int(case["hidden"]), int(case["intermediate"])
        shard_bytes = 3 * hidden * inter * 4 // WORLD_SIZE  # float32 weights
        figures["card_bytes"] = held
        if abs(held[0] - held[1]) > shard_bytes / 2:
            raise CandidateFailure(
                Verdict.POLICY,
                f"{where}: the cards hold {held[0] / 2**20:.0f} and {held[1] / 2**20:.0f} MiB "
                f"for the sandbox, where a rank's shard of the weights is "
                f"{shard_bytes / 2**20:.0f} MiB: each rank must keep only its own shard",
                figures,
            )
        return figures
