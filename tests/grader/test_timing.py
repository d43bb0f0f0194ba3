"""The measurement module and the timing cross-check, on synthetic samples."""

from __future__ import annotations

import itertools

import pytest

from grader.grading import timing_verdict
from grader.harnesses.contract import Verdict
from grader.harnesses.timing import MeasureSettings, measure, percentile, summarize

MS = 1_000_000


def _measurement(inside_ms: list[float], overhead_ms: float, bytes_moved: int = 0):
    inside = [int(v * MS) for v in inside_ms]
    outside = [v + int(overhead_ms * MS) for v in inside]
    return summarize(inside, outside, warmup=1, bytes_moved=bytes_moved)


def test_percentiles_and_summary_are_exact():
    m = summarize([5, 1, 3, 2, 4], [6, 2, 4, 3, 5], warmup=2)
    assert (m.median_ns, m.p10_ns, m.p90_ns) == (3, 1.4, 4.6)
    assert m.overhead_median_ns == 1
    assert percentile([], 0.5) == 0.0


def test_measure_stops_at_the_target_error_or_the_repetition_cap():
    steady = itertools.repeat((1000, 1100))
    m = measure(
        lambda: next(steady), MeasureSettings(warmup=2, min_repetitions=7, max_repetitions=50)
    )
    assert len(m.samples_ns) == 7  # zero spread: stops as soon as allowed
    noisy = itertools.cycle([(1000, 1100), (5000, 5100)])
    m = measure(
        lambda: next(noisy),
        MeasureSettings(warmup=0, min_repetitions=3, max_repetitions=20, target_rse=0.0001),
    )
    assert len(m.samples_ns) == 20


def test_honest_timings_are_accepted_with_the_ratio_as_score():
    reference = _measurement([4.0] * 9, overhead_ms=0.5)
    candidate = _measurement([2.0] * 9, overhead_ms=0.5)
    verdict, _, score = timing_verdict(candidate, reference, 5e11)
    assert (verdict, score) == (Verdict.ACCEPTED, 2.0)


def test_untimed_work_is_charged_to_the_candidate():
    reference = _measurement([4.0] * 9, overhead_ms=0.5)
    candidate = _measurement([1.0] * 9, overhead_ms=2.0)  # 1.5 ms more untimed per call
    verdict, _, score = timing_verdict(candidate, reference, 5e11)
    assert verdict is Verdict.ACCEPTED
    assert score == pytest.approx(4.0 / 2.5)


@pytest.mark.parametrize(
    ("candidate_ms", "overhead_ms", "bytes_moved", "verdict", "words"),
    [
        ([0.3] * 9, 0.5, 0, Verdict.SUSPECT, "implausible"),
        ([2.0] * 9, 0.5, 10**12, Verdict.SUSPECT, "speed of light"),
        ([1.0] * 9, 9.0, 0, Verdict.POLICY, "disagree with the wall clock"),
    ],
    ids=["more-than-10x", "beyond-speed-of-light", "untimed-work"],
)
def test_implausible_timings_are_flagged(candidate_ms, overhead_ms, bytes_moved, verdict, words):
    reference = _measurement([4.0] * 9, overhead_ms=0.5)
    candidate = _measurement(candidate_ms, overhead_ms, bytes_moved)
    got, message, _ = timing_verdict(candidate, reference, 5e11)
    assert got is verdict
    assert words in message


def test_inside_time_longer_than_the_wall_clock_is_policy():
    reference = _measurement([4.0] * 9, overhead_ms=0.5)
    candidate = summarize([3 * MS, 3 * MS], [4 * MS, 2 * MS], warmup=0)
    verdict, message, score = timing_verdict(candidate, reference, 5e11)
    assert (verdict, score) == (Verdict.POLICY, 0.0)
    assert "timed call 2" in message
