"""The one measurement module every harness uses.

CPU: warm-up calls, then repetitions until the relative standard error of the mean is below
a target or a time budget ends; every call gets fresh inputs (the caller generates them), so
caches never see the same data twice. Median, p10/p90 and the raw samples are kept.

GPU (used by kernel kinds inside the sandbox): :class:`CudaTimer` records CUDA events around
the call with a device-wide synchronise before the end event and flushes a buffer of twice the
L2 cache between samples; :func:`device_state` logs clocks, temperature and throttle reasons.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grader.harnesses.contract import Measurement


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


def summarize(
    samples_ns: list[int], outside_ns: list[int], warmup: int, bytes_moved: int = 0
) -> Measurement:
    return Measurement(
        samples_ns=samples_ns,
        outside_ns=outside_ns,
        median_ns=percentile(samples_ns, 0.5),
        p10_ns=percentile(samples_ns, 0.1),
        p90_ns=percentile(samples_ns, 0.9),
        relative_standard_error=relative_standard_error(samples_ns),
        warmup=warmup,
        bytes_moved=bytes_moved,
    )


def measure(
    call: Callable[[], tuple[int, int]], settings: MeasureSettings, bytes_moved: int = 0
) -> Measurement:
    """Time ``call`` (one checked call returning (inside_ns, outside_ns)) until precise enough."""
    for _ in range(settings.warmup):
        call()
    inside: list[int] = []
    outside: list[int] = []
    deadline = time.monotonic() + settings.budget_s
    while len(inside) < settings.max_repetitions:
        inside_ns, outside_ns = call()
        inside.append(inside_ns)
        outside.append(outside_ns)
        if len(inside) < settings.min_repetitions:
            continue
        if relative_standard_error(inside) <= settings.target_rse or time.monotonic() > deadline:
            break
    return summarize(inside, outside, settings.warmup, bytes_moved)


class CudaTimer:
    """Times one GPU call in the sandbox: L2 flush, CUDA events, device-wide synchronise."""

    def __init__(self, l2_bytes: int | None = None) -> None:
        import torch

        self.torch = torch
        properties = torch.cuda.get_device_properties(torch.cuda.current_device())
        l2 = l2_bytes or int(getattr(properties, "L2_cache_size", 50 * 1024**2))
        # At least twice the L2, so no byte of the previous sample's working set survives.
        self.flush_buffer = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")

    def time_ns(self, call: Callable[[], Any]) -> tuple[int, Any]:
        torch = self.torch
        self.flush_buffer.zero_()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        result = call()
        torch.cuda.synchronize()  # work on any stream, not only the current one, is counted
        end.record()
        end.synchronize()
        return int(start.elapsed_time(end) * 1e6), result


def device_state() -> dict[str, Any]:
    """GPU clocks, temperature and throttle reasons when NVML is present; empty on a CPU."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return {
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "memory_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "temperature_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
            "throttle_reasons": int(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)),
        }
    except Exception as error:  # NVML missing its driver: record why instead of failing
        return {"error": str(error)}
