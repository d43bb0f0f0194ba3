"""The one measurement module every harness uses.

Warm-up calls, then repetitions until the relative standard error of the median's samples is
below a target or a time budget ends; every call gets fresh inputs (the harness generates
them), so caches never see the same data twice. Median, p10/p90 and the raw samples are kept.
Every sample is the trusted side's clock (``CallTiming.outside_ns``): nothing the sandbox says
about its own time scores.

The candidate and the reference are timed *interleaved*, in short alternating blocks, so both
see the same machine load; the solution not being timed is frozen (SIGSTOP on its whole
process tree), so it can neither burn CPU to slow the other down nor notice being timed.

GPU (used by kernel kinds inside the sandbox): :class:`CudaTimer` flushes twice the L2,
synchronises the device, and times the call (or its CUDA graph's replay) with CUDA events on
the caller's stream, reporting work left on other streams; :func:`card_peaks` measures the
card's bf16 matmul peak, copy bandwidth and read bandwidth once per process (the trusted side's
speed of light); :func:`device_state` logs clocks, temperature, power and throttle reasons.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from grader.harnesses.contract import CallTiming, Measurement

#: one checked call on fresh inputs.
TimedCall = Callable[[], CallTiming]
# Calls per turn before switching to the other solution: short enough that load changes hit
# both solutions alike.
BLOCK_CALLS = 5


class Freezable(Protocol):
    def freeze(self) -> None: ...

    def thaw(self) -> None: ...


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how often to time one solution (a problem's ``benchmark`` section)."""

    warmup: int = 3
    min_repetitions: int = 10
    max_repetitions: int = 200
    # Wall budget per solution, generation and checking included; two solutions are timed
    # per job, so this bounds a job's benchmark phase to about twice it.
    budget_s: float = 2.0
    target_rse: float = 0.01

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureSettings:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile of ``values`` (fraction in [0, 1])."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def relative_standard_error(values: list[float]) -> float:
    if len(values) < 2:
        return math.inf
    mean = statistics.fmean(values)
    if mean <= 0:
        return math.inf
    return statistics.stdev(values) / math.sqrt(len(values)) / mean


def summarize(calls: list[CallTiming], warmup: int, bytes_moved: int = 0) -> Measurement:
    """The trusted clock's samples (``outside_ns``) and their statistics; the sandbox's own
    figures ride along as ``reported_ns``, for display."""
    samples_ns = [c.outside_ns for c in calls]
    return Measurement(
        samples_ns=samples_ns,
        reported_ns=[c.inside_ns for c in calls],
        median_ns=percentile(samples_ns, 0.5),
        p10_ns=percentile(samples_ns, 0.1),
        p90_ns=percentile(samples_ns, 0.9),
        relative_standard_error=relative_standard_error(samples_ns),
        warmup=warmup,
        bytes_moved=bytes_moved,
    )


def per_call(batches: Measurement, calls: int, overhead_ns: float) -> Measurement:
    """Batches of ``calls`` calls as one call's time: each batch's time less the ``overhead_ns``
    every batch pays (measured alone, the same way), over ``calls``."""
    one_call = summarize(
        [
            CallTiming(int(reported / calls), int((sample - overhead_ns) / calls))
            for sample, reported in zip(batches.samples_ns, batches.reported_ns, strict=True)
        ],
        batches.warmup,
        batches.bytes_moved,
    )
    return dataclasses.replace(one_call, calls_per_sample=calls, overhead_ns=overhead_ns)


def measure(call: TimedCall, settings: MeasureSettings, bytes_moved: int = 0) -> Measurement:
    """Time one solution alone (tools and benchmarks; grading uses :func:`measure_interleaved`)."""
    return measure_interleaved({"only": (call, None)}, settings, {"only": bytes_moved})["only"]


def measure_interleaved(
    solutions: dict[str, tuple[TimedCall, Freezable | None]],
    settings: MeasureSettings,
    bytes_moved: dict[str, int] | None = None,
) -> dict[str, Measurement]:
    """Time several solutions in alternating blocks until each is precise enough or time is up.

    ``solutions`` maps a name to (timed call, its sandbox); every sandbox but the one being
    timed is frozen, and the one being timed is woken by its own calls, inside their trusted
    windows (``SandboxSession.call``). Exceptions from a call propagate (the caller knows whose
    call failed).
    """
    names = list(solutions)
    timings: dict[str, list[CallTiming]] = {name: [] for name in names}

    def turn(name: str, calls: int, record: bool) -> None:
        # The solution's own calls wake its sandbox (inside their trusted windows).
        for other in names:
            other_sandbox = solutions[other][1]
            if other != name and other_sandbox is not None:
                other_sandbox.freeze()
        call = solutions[name][0]
        for _ in range(calls):
            timing = call()
            if record:
                timings[name].append(timing)

    for name in names:
        turn(name, settings.warmup, record=False)
    deadline = time.monotonic() + settings.budget_s * len(names)

    def done(name: str) -> bool:
        count = len(timings[name])
        if count >= settings.max_repetitions:
            return True
        if count < settings.min_repetitions:
            return False
        samples = [t.outside_ns for t in timings[name]]
        precise = relative_standard_error(samples) <= settings.target_rse
        return precise or time.monotonic() > deadline

    while not all(done(name) for name in names):
        for name in names:
            room = settings.max_repetitions - len(timings[name])
            turn(name, max(min(BLOCK_CALLS, room), 0), record=True)
    for name in names:
        sandbox = solutions[name][1]
        if sandbox is not None:
            sandbox.thaw()
    return {
        name: summarize(timings[name], settings.warmup, (bytes_moved or {}).get(name, 0))
        for name in names
    }


def gpu_visible() -> bool:
    """Whether this process can see an NVIDIA GPU (without importing torch or CUDA)."""
    return os.path.exists("/dev/nvidiactl")


def gpu_available() -> bool:
    """Whether torch can run CUDA work here (imports torch; the trusted side asks this)."""
    if not gpu_visible():
        return False
    import torch

    return torch.cuda.is_available()


# About 2 ms of bf16 matmuls (2048^3 each, ~25 us at full clock) before every timed call.
WARM_MATMULS = 80
# A GPU-side wait queued before the start event of a graph replay, so the start event and the
# replay are both queued before the GPU reaches them: the host's launch cost (5-20 us of
# Python and cudaGraphLaunch, more on a busy host) is then not inside the timed window. 200k
# cycles is about 100 us at an H100's 1.98 GHz; the replay's work was fixed at capture, so
# nothing of the candidate's runs on the host in that time.
LAUNCH_COVER_CYCLES = 200_000


class CudaTimer:
    """Times one GPU call in the sandbox the way kernel leaderboards do, and checks it.

    Per call: about 2 ms of matmuls to raise the clocks from idle, a read of a buffer twice
    the L2 (no byte of the previous call's working set stays cached, and no dirty line is
    left to write back during the call), a synchronise of the whole device, a start event,
    the call (or its CUDA graph's replay: for short kernels the launch costs more than the
    work), the end event on the caller's stream, a snapshot of the output on that stream, a
    second synchronise of the whole device and a second end event. The time is start to first
    end; the gap to the second end is work the call left on other streams plus the host's
    latency in coming back from the synchronise (a descheduled process stretches it, so the
    kernel harness convicts only on several calls in a row: ``kernel.stream_gap_verdict``),
    and a snapshot that differs from the final output is work the caller's stream did not wait
    for.

    A graph replay is queued behind a short GPU-side wait (``LAUNCH_COVER_CYCLES``), so its
    time is the GPU's work alone: timed from an idle queue, a short replay also counted the
    host's launch, which moves with the host's load and spread the samples (grader/README.md,
    "The card's peaks"). An eager call is still timed from an idle queue, its launches
    included: what it does on the host is part of its cost.
    """

    def __init__(self, l2_bytes: int | None = None) -> None:
        import torch

        self.torch = torch
        properties = torch.cuda.get_device_properties(torch.cuda.current_device())
        l2 = l2_bytes or int(getattr(properties, "L2_cache_size", 50 * 1024**2))
        # At least twice the L2, so no byte of the previous sample's working set survives.
        self.flush_buffer = torch.ones(2 * l2, dtype=torch.uint8, device="cuda")
        self.warm_operand = torch.randn(2048, 2048, dtype=torch.bfloat16, device="cuda")

    def _warm_and_flush(self) -> None:
        """Bring the SM clocks up, then evict the L2 by reading (clean lines, no write-back).

        Between timed calls the card idles (its clocks drop) while the harness draws inputs
        and checks outputs; a zeroing flush would leave dirty lines to write back inside the
        timed call. Both slowed paged decode (grader/README.md, "The card's peaks").
        """
        for _ in range(WARM_MATMULS):
            self.warm_operand @ self.warm_operand
        self.flush_buffer.sum(dtype=self.torch.int32)

    def time_call(self, call: Callable[[], Any], graph: tuple[Any, Any] | None = None):
        """Returns (elapsed_ns, stream_gap_ns, output, snapshot of the output at return)."""
        torch = self.torch
        start, end, end_all = (torch.cuda.Event(enable_timing=True) for _ in range(3))
        self._warm_and_flush()
        torch.cuda.synchronize()
        if graph is None:
            start.record()
            result = call()
        else:
            torch.cuda._sleep(LAUNCH_COVER_CYCLES)
            start.record()
            graph[0].replay()
            result = graph[1]
        end.record()
        snapshot = result.clone() if isinstance(result, torch.Tensor) else None
        torch.cuda.synchronize()  # work on any stream, not only the current one
        end_all.record()
        end_all.synchronize()
        elapsed_ns = int(start.elapsed_time(end) * 1e6)
        gap_ns = int(end.elapsed_time(end_all) * 1e6)
        return elapsed_ns, gap_ns, result, snapshot


@dataclass(frozen=True)
class CardPeaks:
    """What this card measured: bf16 matmul FLOP/s on random data, copy bytes (read + write)/s,
    and bytes read/s by the fastest of its read-only kernels (`torch.sum` and the streaming
    reads of :mod:`grader.harnesses.read_peak`)."""

    card: str
    matmul_flops_per_s: float
    copy_bytes_per_s: float
    read_bytes_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def memory_ceiling(self) -> tuple[float, str]:
        """(bytes/s, "read" or "copy"): the bandwidth a kernel's bytes are bounded by, the faster
        of the two (a kernel that mostly reads can beat a copy, whose reads and writes share the
        bus)."""
        return max((self.read_bytes_per_s, "read"), (self.copy_bytes_per_s, "copy"))


# The peak measurement: an 8192^3 bf16 product (~1.4 ms at 780 TFLOP/s), a 2 GiB copy (~1 ms
# at 4 TB/s) and reads of the same 2 GiB (34x an H200's L2), each the median of this many timed
# calls after three untimed ones.
PEAK_MATMUL_SIZE = 8192
PEAK_COPY_BYTES = 2 * 1024**3
PEAK_REPEATS = 15


def _median_ns(timer: CudaTimer, call: Callable[[], Any], graphed: bool = True) -> float:
    """The median time of ``call``, replayed from a CUDA graph unless ``graphed`` is False.

    Python's launch of a Triton kernel takes tens of microseconds and the start event waits
    for it, so timed eagerly the reads looked slower than kernels timed from a graph. The copy
    is timed eagerly: in a graph a device-to-device copy becomes a memcpy node that the copy
    engines run, far below the copy kernel (both measured: grader/README.md, "The card's
    peaks").
    """
    torch = timer.torch
    for _ in range(3):
        call()
    if not graphed:
        return statistics.median(timer.time_call(call)[0] for _ in range(PEAK_REPEATS))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = call()
    graph.replay()
    return statistics.median(timer.time_call(call, (graph, output))[0] for _ in range(PEAK_REPEATS))


def _matmul_ns(timer: CudaTimer) -> float:
    import torch

    a, b = (
        torch.randn(PEAK_MATMUL_SIZE, PEAK_MATMUL_SIZE, device="cuda", dtype=torch.bfloat16)
        for _ in range(2)
    )
    return _median_ns(timer, lambda: a @ b)


def _copy_and_read_ns(timer: CudaTimer) -> tuple[float, float]:
    """A 2 GiB device copy, then reads of its source: torch's sum and streaming Triton reads of
    a few shapes (:mod:`grader.harnesses.read_peak`), the fastest of them (none is known to
    reach the card's read bandwidth on every card; each writes a few bytes only)."""
    import torch

    from grader.harnesses.read_peak import VARIANTS, read_all

    source = torch.empty(PEAK_COPY_BYTES, dtype=torch.uint8, device="cuda").random_()
    # The target lives only as long as the copy's measurement: the reads need 2 GiB less.
    copy_ns = _median_ns(
        timer, functools.partial(torch.empty_like(source).copy_, source), graphed=False
    )
    words = source.view(torch.float32)
    reads = [words.sum] + [functools.partial(read_all, words, *shape) for shape in VARIANTS]
    read_ns = min(_median_ns(timer, read) for read in reads)
    return copy_ns, read_ns


@functools.lru_cache(maxsize=1)
def card_peaks() -> CardPeaks:
    """This process's GPU, measured once (about a second, 4.3 GB of card memory, freed after).

    The speed of light of a kernel problem is its bytes at the faster of the read and copy
    bandwidths or its FLOPs at the matmul peak, measured here, on the card that timed it, with
    :class:`CudaTimer`.
    """
    import torch

    timer = CudaTimer()
    matmul_ns = _matmul_ns(timer)
    copy_ns, read_ns = _copy_and_read_ns(timer)
    torch.cuda.empty_cache()  # the sandboxes need the card's memory, not this process's cache
    return CardPeaks(
        card=torch.cuda.get_device_name(),
        matmul_flops_per_s=2 * PEAK_MATMUL_SIZE**3 / (matmul_ns / 1e9),
        copy_bytes_per_s=2 * PEAK_COPY_BYTES / (copy_ns / 1e9),
        read_bytes_per_s=PEAK_COPY_BYTES / (read_ns / 1e9),
    )


def device_state() -> dict[str, Any]:
    """GPU clocks, temperature, power and throttle reasons (NVML, else nvidia-smi); {} on a CPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return {
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "memory_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "temperature_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
            "throttle_reasons": int(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)),
        }
    except Exception:  # no NVML bindings or driver: ask nvidia-smi instead
        pass
    fields = (
        "clocks.sm",
        "clocks.mem",
        "temperature.gpu",
        "power.draw",
        "clocks_throttle_reasons.active",
    )
    try:
        line = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return {}
    names = ("sm_clock_mhz", "memory_clock_mhz", "temperature_c", "power_w", "throttle_reasons")
    return dict(zip(names, (value.strip() for value in line.split(",")), strict=False))
