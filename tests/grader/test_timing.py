"""The measurement module and the timing cross-check, on synthetic samples."""

from __future__ import annotations

import itertools

import pytest

from grader.grading import timing_verdict
from grader.harnesses.contract import CallTiming, SpeedOfLight, Verdict
from grader.harnesses.timing import (
    CardPeaks,
    MeasureSettings,
    gpu_available,
    measure,
    measure_interleaved,
    per_call,
    percentile,
    summarize,
)

MS = 1_000_000
# A CPU problem's bound: bytes at 500 GB/s (cpu-softmax's YAML).
BOUND = SpeedOfLight(bytes=1_000_000, flops=0, bytes_per_s=5e11, basis="the problem's bound")


def _measurement(trusted_ms: list[float], reported_ms: float = 0.0):
    calls = [CallTiming(int(reported_ms * MS), int(v * MS)) for v in trusted_ms]
    return summarize(calls, warmup=1)


def test_percentiles_and_summary_are_exact():
    calls = [CallTiming(0, i) for i in (5, 1, 3, 2, 4)]
    m = summarize(calls, warmup=2)
    assert (m.median_ns, m.p10_ns, m.p90_ns) == (3, 1.4, 4.6)
    assert percentile([], 0.5) == 0.0


def test_only_the_trusted_clock_scores():
    """What the sandbox says of its own time rides along for display and changes nothing."""
    honest = _measurement([2.0] * 9, reported_ms=2.0)
    forged = _measurement([2.0] * 9, reported_ms=0.001)
    assert forged.samples_ns == honest.samples_ns
    assert forged.reported_ns == [1000] * 9
    reference = _measurement([4.0] * 9)
    assert timing_verdict(forged, reference, BOUND) == timing_verdict(honest, reference, BOUND)


def test_measure_stops_at_the_target_error_or_the_repetition_cap():
    steady = itertools.repeat(CallTiming(1000, 1100))
    settings = MeasureSettings(warmup=2, min_repetitions=7, max_repetitions=50)
    m = measure(lambda: next(steady), settings)
    assert len(m.samples_ns) == 10  # zero spread, but calls come in blocks of five
    noisy = itertools.cycle([CallTiming(1000, 1100), CallTiming(5000, 5100)])
    m = measure(
        lambda: next(noisy),
        MeasureSettings(warmup=0, min_repetitions=3, max_repetitions=20, target_rse=0.0001),
    )
    assert len(m.samples_ns) == 20


class FakeSandbox:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def freeze(self) -> None:
        self.log.append(f"freeze {self.name}")

    def thaw(self) -> None:
        self.log.append(f"thaw {self.name}")


def test_interleaved_timing_alternates_blocks_and_freezes_the_idle_solution():
    log: list[str] = []

    def call(name: str):
        def timed() -> CallTiming:
            log.append(f"call {name}")
            return CallTiming(1000, 1100)

        return timed

    settings = MeasureSettings(warmup=1, min_repetitions=10, max_repetitions=10)
    measured = measure_interleaved(
        {name: (call(name), FakeSandbox(name, log)) for name in ("a", "b")}, settings
    )
    assert [len(m.samples_ns) for m in measured.values()] == [10, 10]
    # The timed solution's own calls wake it (inside their windows); the other stays frozen.
    assert log[:4] == ["freeze b", "call a", "freeze a", "call b"]
    calls = [entry for entry in log if entry.startswith("call")][2:]
    assert calls == (["call a"] * 5 + ["call b"] * 5) * 2


def test_honest_timings_are_accepted_with_the_ratio_as_score():
    reference = _measurement([4.0] * 9)
    candidate = _measurement([2.0] * 9)
    verdict, _, score = timing_verdict(candidate, reference, BOUND)
    assert (verdict, score) == (Verdict.ACCEPTED, 2.0)


# On a card that measured 800 TFLOP/s and 3 TB/s: 1.5 GB take 0.5 ms, 2.4 TFLOP take 3 ms.
CARD = {"bytes_per_s": 3e12, "flops_per_s": 8e14, "basis": "measured on NVIDIA H100 80GB HBM3"}


@pytest.mark.parametrize(
    ("candidate_ms", "bound", "verdict", "words"),
    [
        ([0.3] * 9, BOUND, Verdict.SUSPECT, "implausible"),
        (
            [2.0] * 9,
            SpeedOfLight(bytes=10**12, flops=0, bytes_per_s=5e11),
            Verdict.SUSPECT,
            "faster than the speed-of-light bound (2000.0000 ms: 1,000,000,000,000 bytes at 500 "
            "GB/s)",
        ),
        (
            [2.0] * 9,
            SpeedOfLight(bytes=1_500_000_000, flops=2_400_000_000_000, **CARD),
            Verdict.SUSPECT,
            "(3.0000 ms: 1,500,000,000 bytes at 3,000 GB/s or 2,400,000,000,000 FLOPs at 800 "
            "TFLOP/s, measured on NVIDIA H100 80GB HBM3)",
        ),
        (
            [3.5] * 9,
            SpeedOfLight(bytes=1_500_000_000, flops=2_400_000_000_000, **CARD),
            Verdict.ACCEPTED,
            "1.143x the reference's speed",
        ),
    ],
    ids=[
        "more-than-10x",
        "beyond-the-bytes-bound",
        "beyond-the-flops-bound-on-the-card",
        "within-the-flops-bound",
    ],
)
def test_implausible_timings_are_flagged(candidate_ms, bound, verdict, words):
    reference = _measurement([4.0] * 9)
    candidate = _measurement(candidate_ms)
    got, message, _ = timing_verdict(candidate, reference, bound)
    assert got is verdict
    assert words in message


def test_speed_of_light_is_the_slower_of_the_two_ceilings():
    memory = SpeedOfLight(bytes=3_000_000_000, flops=8 * 10**10, **CARD)
    compute = SpeedOfLight(bytes=3_000_000, flops=8 * 10**11, **CARD)
    assert (memory.time_ns, memory.bound) == (1_000_000.0, "memory")
    assert (compute.time_ns, compute.bound) == (1_000_000.0, "compute")
    assert compute.as_dict()["time_ns"] == 1_000_000.0


def test_a_batch_of_calls_is_one_calls_time_less_its_overhead():
    """Kernel problems time batches of chained calls; each batch also pays for drawing fresh
    inputs and digests, measured the same way with the calls left out."""
    batches = summarize([CallTiming(0, ns) for ns in (1_030, 1_050, 1_010)], warmup=1)
    one = per_call(batches, calls=10, overhead_ns=30.0)
    assert one.samples_ns == [100, 102, 98]
    assert (one.median_ns, one.calls_per_sample, one.overhead_ns) == (100, 10, 30.0)


@pytest.mark.parametrize(
    ("block", "steps", "warps"), [(2048, 8, 16), (32768, 1, 16), (4096, 16, 8)]
)
def test_the_read_kernel_reads_every_element_once(block, steps, warps):
    """Each streaming read of ``card_peaks`` (here under Triton's interpreter without a GPU)."""
    import torch

    from grader.harnesses.read_peak import CHUNK_ELEMENTS, VARIANTS, read_all

    assert (block, steps, warps) in VARIANTS
    device = "cuda" if gpu_available() else "cpu"
    source = torch.arange(2 * CHUNK_ELEMENTS, device=device).remainder(7).float()
    chunks = 2 * CHUNK_ELEMENTS // (block * steps)
    assert read_all(source, block, steps, warps).tolist() == source.view(chunks, -1).sum(1).tolist()
    with pytest.raises(ValueError, match="multiples of 65536"):
        read_all(source[:-1], block, steps, warps)


@pytest.mark.parametrize(
    ("read_bytes_per_s", "ceiling"),
    [(4.40e12, (4.40e12, "read")), (4.0e12, (4.175e12, "copy"))],
    ids=["read-faster", "copy-faster"],
)
def test_bytes_are_bounded_by_the_faster_of_read_and_copy(read_bytes_per_s, ceiling):
    peaks = CardPeaks("NVIDIA H200", 7.73e14, 4.175e12, read_bytes_per_s)
    assert peaks.memory_ceiling() == ceiling
