"""Grade one solution of one problem: the code path shared by the worker and ``manage.py grade``.

The candidate runs in one fresh sandbox (tests, then timing, every timed output checked), then
the problem's reference solution runs in another on the same machine, and the score is the
ratio of their times. No Django here: the caller passes the problem, the code, the secret seed
and the hardware record, and stores the report.
"""

from __future__ import annotations

import math
from typing import Any

from grader.harnesses import harness_get
from grader.harnesses.base import CandidateFailure, Harness, ProblemError, Progress
from grader.harnesses.contract import (
    GradeReport,
    Measurement,
    ProblemSpec,
    RunReport,
    TestOutcome,
    Verdict,
)
from grader.sandbox import SandboxSession, sandbox_kind

# A solution more than this many times faster than the reference is suspect until reviewed.
SUSPECT_SPEEDUP = 10.0
# The outside-minus-inside cost of a candidate's call may exceed the reference's by this
# factor plus this many ns before the inside timings are declared tampered with: the harness
# work per call is the same code on the same sizes, so honest runs stay well inside it.
TIMER_OVERHEAD_FACTOR = 3.0
TIMER_OVERHEAD_SLACK_NS = 2_000_000


def _no_progress(step: str, data: dict[str, Any]) -> None:
    return None


def solution_run(
    harness: Harness,
    code: str,
    seed: int,
    progress: Progress,
) -> RunReport:
    """Run one solution in a fresh sandbox: its tests, then its timing.

    The reference goes through the same sequence as the candidate, so both time the same
    process history (the allocator's state after the tests changes a call's cost by 5x).
    """
    spec = harness.spec
    report = RunReport(verdict=Verdict.ACCEPTED)
    with SandboxSession(type(harness), code, spec.entry_point, spec.limits) as session:
        try:
            session.start(harness.shared_bytes())
            progress("sandbox_started", {"sandbox": str(session.kind)})
            report.tests = harness.check_tests(session, seed, progress)
            failed = [t for t in report.tests if t.verdict is not Verdict.ACCEPTED]
            if failed:
                report.verdict = failed[0].verdict
                report.message = f"{failed[0].name}: {failed[0].message}"
            if report.verdict is Verdict.ACCEPTED:
                progress("benchmarking", {})
                report.measurement = harness.measure(session, seed)
        except CandidateFailure as failure:
            report.verdict, report.message = failure.verdict, failure.message
        finally:
            session.close()
            report.stdout, report.stderr = session.output()
    return report


def _effective_ns(candidate: Measurement, reference: Measurement) -> float:
    """The candidate's time, charged for any outside cost beyond the reference's harness cost."""
    outside_median = sorted(candidate.outside_ns)[len(candidate.outside_ns) // 2]
    return max(candidate.median_ns, outside_median - reference.overhead_median_ns, 1.0)


def timing_verdict(
    candidate: Measurement, reference: Measurement, speed_of_light_bytes_per_s: float
) -> tuple[Verdict, str, float]:
    """Cross-check the candidate's timings and score them: (verdict, message, score)."""
    for index, (inside, outside) in enumerate(
        zip(candidate.samples_ns, candidate.outside_ns, strict=True)
    ):
        if inside > outside:
            return (
                Verdict.POLICY,
                f"timed call {index + 1} reported {inside} ns inside the sandbox but took "
                f"{outside} ns of wall clock outside it",
                0.0,
            )
    allowed_ns = max(
        TIMER_OVERHEAD_FACTOR * reference.overhead_median_ns,
        reference.overhead_median_ns + TIMER_OVERHEAD_SLACK_NS,
    )
    if candidate.overhead_median_ns > allowed_ns:
        return (
            Verdict.POLICY,
            "timings inside the sandbox disagree with the wall clock outside it: "
            f"{candidate.overhead_median_ns / 1e6:.2f} ms per call went untimed "
            f"(the reference needed {reference.overhead_median_ns / 1e6:.2f} ms)",
            0.0,
        )
    effective_ns = _effective_ns(candidate, reference)
    score = round(reference.median_ns / effective_ns, 3)
    if speed_of_light_bytes_per_s and candidate.bytes_moved:
        floor_ns = candidate.bytes_moved / speed_of_light_bytes_per_s * 1e9
        if effective_ns < floor_ns:
            return (
                Verdict.SUSPECT,
                f"{effective_ns / 1e6:.3f} ms is faster than moving its bytes at the speed of "
                f"light bound ({floor_ns / 1e6:.3f} ms); hidden until an admin reviews it",
                score,
            )
    if score > SUSPECT_SPEEDUP:
        return (
            Verdict.SUSPECT,
            f"{score:.1f}x the reference is implausible; hidden until an admin reviews it",
            score,
        )
    return Verdict.ACCEPTED, f"{score:.3f}x the reference's speed", score


def grade(
    spec: ProblemSpec,
    code: str,
    *,
    seed: int,
    hardware: dict[str, Any],
    progress: Progress = _no_progress,
) -> GradeReport:
    """Grade ``code`` against ``spec``; candidate failures are verdicts, never exceptions.

    ``seed`` is the secret from which every input is derived (with a fresh nonce per call);
    infrastructure failures (the sandbox cannot start, the host is out of memory) raise.
    """
    harness_class = harness_get(spec.harness)
    version = f"{harness_class.kind}/{harness_class.version}"
    report = GradeReport(
        verdict=Verdict.INTERNAL_ERROR,
        score=0.0,
        message="",
        tests=[],
        hardware=hardware,
        sandbox=sandbox_kind(),
        harness_version=version,
    )
    try:
        harness = harness_class(spec)
        candidate = solution_run(harness, code, seed, progress)
        report.tests, report.stdout, report.stderr = (
            candidate.tests,
            candidate.stdout,
            candidate.stderr,
        )
        report.candidate = candidate.measurement
        if candidate.verdict is not Verdict.ACCEPTED:
            report.verdict, report.message = candidate.verdict, candidate.message
            return report
        progress("reference", {})
        reference = solution_run(harness_class(spec), spec.reference_code, seed, _no_progress)
        if reference.verdict is not Verdict.ACCEPTED or reference.measurement is None:
            raise ProblemError(f"the reference solution failed: {reference.message}")
        report.reference = reference.measurement
        report.verdict, report.message, report.score = timing_verdict(
            candidate.measurement, reference.measurement, spec.speed_of_light_bytes_per_s
        )
        if not math.isfinite(report.score):
            report.score = 0.0
    except ProblemError as error:
        report.verdict = Verdict.INTERNAL_ERROR
        report.message = f"the problem is broken (our fault, not yours): {error}"
    return report


def tests_table(tests: list[TestOutcome]) -> str:
    """The per-test table ``manage.py grade`` prints."""
    rows = [("test", "verdict", "time_ms", "message")]
    for test in tests:
        time_ms = "" if test.time_ms is None else f"{test.time_ms:.3f}"
        rows.append(
            (
                test.name,
                str(test.verdict),
                time_ms,
                test.message.splitlines()[0][:100] if test.message else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip()
        for row in rows
    )
