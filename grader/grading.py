"""Grade one solution of one problem: the code path shared by the worker and ``manage.py grade``.

The candidate runs its tests in one fresh sandbox; the problem's reference solution runs the
same tests in another; then both are timed interleaved on the trusted side's clock (every
timed output checked, the idle one frozen), and the score is the ratio of their times. No
Django here: the caller passes the problem, the code, the secret seed and the hardware record,
and stores the report.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from grader.harnesses import harness_get
from grader.harnesses.base import CandidateFailure, Harness, ProblemError, Progress
from grader.harnesses.contract import (
    CallTiming,
    GradeReport,
    Measurement,
    ProblemSpec,
    SpeedOfLight,
    TestOutcome,
    Verdict,
)
from grader.harnesses.timing import TimedCall, gpu_available, measure_interleaved
from grader.sandbox import SandboxSession, compile_cache_dir, sandbox_kind

# What a GPU problem's accepted result says when no card timed it.
CORRECTNESS_ONLY_MESSAGE = "correct; speed not measured: no GPU"
# A solution more than this many times faster than the reference is suspect until reviewed.
SUSPECT_SPEEDUP = 10.0


def _no_progress(step: str, data: dict[str, Any]) -> None:
    return None


def _tests_run(
    harness: Harness, session: SandboxSession, seed: int, progress: Progress
) -> tuple[list[TestOutcome], Verdict, str]:
    """Start a solution's sandbox and run its tests: (outcomes, verdict, message)."""
    try:
        session.start(harness.shared_bytes())
        progress("sandbox_started", {"sandbox": str(session.kind)})
        tests = harness.check_tests(session, seed, progress)
    except CandidateFailure as failure:
        return [], failure.verdict, failure.message
    failed = [t for t in tests if t.verdict is not Verdict.ACCEPTED]
    if failed:
        return tests, failed[0].verdict, f"{failed[0].name}: {failed[0].message}"
    return tests, Verdict.ACCEPTED, ""


def _reference_call(call: TimedCall) -> TimedCall:
    """The reference's timed call, whose failures are the problem's fault, not the candidate's."""

    def checked() -> CallTiming:
        try:
            return call()
        except CandidateFailure as failure:
            raise ProblemError(f"the reference failed while timed: {failure.message}") from None

    return checked


def timing_verdict(
    candidate: Measurement, reference: Measurement, speed_of_light: SpeedOfLight | None
) -> tuple[Verdict, str, float]:
    """Score the candidate's trusted timings against the reference's.

    Returns (verdict, message, score); the score is the reference's median time over the
    candidate's, both measured by the trusted side's clock, interleaved in the same job. Faster
    than ``speed_of_light`` or more than ``SUSPECT_SPEEDUP`` times the reference is ``suspect``.
    """
    score = round(reference.median_ns / max(candidate.median_ns, 1.0), 3)
    if speed_of_light is not None and candidate.median_ns < speed_of_light.time_ns:
        return (
            Verdict.SUSPECT,
            f"{candidate.median_ns / 1e6:.4f} ms is faster than the speed-of-light bound "
            f"({speed_of_light.time_ns / 1e6:.4f} ms: {_ceilings(speed_of_light)}); hidden "
            "until an admin reviews it",
            score,
        )
    if score > SUSPECT_SPEEDUP:
        return (
            Verdict.SUSPECT,
            f"{score:.1f}x the reference is implausible; hidden until an admin reviews it",
            score,
        )
    return Verdict.ACCEPTED, f"{score:.3f}x the reference's speed", score


def _ceilings(bound: SpeedOfLight) -> str:
    """What a speed-of-light time is made of, in words."""
    parts = [f"{bound.bytes:,} bytes at {bound.bytes_per_s / 1e9:,.0f} GB/s"]
    if bound.flops and bound.flops_per_s:
        parts.append(f"{bound.flops:,} FLOPs at {bound.flops_per_s / 1e12:,.0f} TFLOP/s")
    return " or ".join(parts) + (f", {bound.basis}" if bound.basis else "")


def _report_start(
    spec: ProblemSpec, code: str, hardware: dict[str, Any]
) -> tuple[type[Harness], GradeReport, bool]:
    """The kind, a report to fill, and whether the source breaks the statement's rules (read
    here before anything runs; the report then says so and is final)."""
    harness_class = harness_get(spec.harness)
    report = GradeReport(
        verdict=Verdict.INTERNAL_ERROR,
        score=0.0,
        message="",
        tests=[],
        hardware=hardware,
        sandbox=sandbox_kind(),
        harness_version=f"{harness_class.kind}/{harness_class.version}",
    )
    breaks = harness_class.source_breaks(code, spec.entry_point)
    if breaks:
        report.verdict = Verdict.POLICY
        report.message = "the statement's rules are broken (read in your source, before it ran): "
        report.message += "; ".join(breaks)
    return harness_class, report, bool(breaks)


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
    harness_class, report, refused = _report_start(spec, code, hardware)
    if refused:
        return report
    # Compiled kernels persist only for the problem's own reference code (and a submission of
    # exactly that code): no other code can write what a later run of the reference loads.
    reference_cache = compile_cache_dir(spec.reference_code) if harness_class.needs_gpu else None
    candidate_session = SandboxSession(
        harness_class,
        code,
        spec.entry_point,
        spec.limits,
        compile_cache=reference_cache if code == spec.reference_code else None,
    )
    reference_session = SandboxSession(
        harness_class,
        spec.reference_code,
        spec.entry_point,
        spec.limits,
        compile_cache=reference_cache,
        extra_paths=spec.reference_paths,
    )
    # The session's own kind: a GPU problem whose sandbox cannot reach the card runs unsandboxed.
    report.sandbox = candidate_session.kind
    try:
        candidate, reference = harness_class(spec), harness_class(spec)
        # Checking the reference's timed outputs cost half of a kernel grade (8 x 134 MB per
        # attention batch fetched and compared) and proves nothing: the tests checked it.
        reference.checks_timed_outputs = False
        report.nonces = {"candidate": candidate.nonce, "reference": reference.nonce}
        report.tests, report.verdict, report.message = _tests_run(
            candidate, candidate_session, seed, progress
        )
        if report.verdict is not Verdict.ACCEPTED:
            return report
        if harness_class.needs_gpu and not gpu_available():
            # No number that was not measured: no score, so nothing ranks or averages it.
            report.message = CORRECTNESS_ONLY_MESSAGE
            report.score = None
            return report
        # The reference goes through the same tests, so both solutions are timed with the
        # same process history (the allocator's state after the tests changes a call's cost).
        candidate_session.freeze()
        progress("reference", {})
        _, reference_verdict, reference_message = _tests_run(
            reference, reference_session, seed, _no_progress
        )
        if reference_verdict is not Verdict.ACCEPTED:
            raise ProblemError(f"the reference solution failed: {reference_message}")
        progress("benchmarking", {})
        policy = candidate.policy_score(candidate_session, seed)
        timed_calls = {
            "candidate": (candidate.timed_call(candidate_session, seed), candidate_session),
            "reference": (
                _reference_call(reference.timed_call(reference_session, seed)),
                reference_session,
            ),
        }
        overhead = reference.overhead_call(reference_session, seed)
        if overhead is not None:
            timed_calls["overhead"] = (_reference_call(overhead), reference_session)
        bytes_moved = {"candidate": candidate.bytes_moved(), "reference": reference.bytes_moved()}
        settings = candidate.measure_settings()
        report.speed_of_light = candidate.speed_of_light()
        measured = measure_interleaved(timed_calls, settings, bytes_moved)
        report.candidate = candidate.per_call(measured["candidate"], measured.get("overhead"))
        report.reference = reference.per_call(measured["reference"], measured.get("overhead"))
        broken = candidate.resource_breaks(reference)
        if broken:
            raise CandidateFailure(Verdict.POLICY, broken)
        report.verdict, report.message, report.score = timing_verdict(
            report.candidate, report.reference, report.speed_of_light
        )
        if policy is not None:
            report.policy = policy
            if report.verdict in (Verdict.ACCEPTED, Verdict.SUSPECT):
                wall = report.score
                report.verdict, report.score = Verdict.ACCEPTED, policy.score
                report.message = f"{policy.message}; wall time {wall:.3f}x the reference's"
    except CandidateFailure as failure:
        report.verdict, report.message, report.score = failure.verdict, failure.message, 0.0
    except ProblemError as error:
        report.verdict, report.score = Verdict.INTERNAL_ERROR, 0.0
        report.message = f"the problem is broken (our fault, not yours): {error}"
    finally:
        candidate_session.close()
        reference_session.close()
        report.stdout, report.stderr = candidate_session.output()
    if report.score is not None and not math.isfinite(report.score):
        report.score = 0.0
    return report


def run_examples(
    spec: ProblemSpec,
    code: str,
    *,
    seed: int,
    hardware: dict[str, Any],
    custom_inputs: list[Any] = (),
    progress: Progress = _no_progress,
) -> GradeReport:
    """LeetCode's Run: ``code`` on the problem's public examples and the inputs the candidate
    wrote, in one sandbox, without the reference and without timing.

    Each example is judged by the trusted side exactly as in a grade (the same harness, the
    same checks); the report's verdict is the first failing example's, accepted when every one
    passed, and it has no score.
    """
    harness_class, report, refused = _report_start(spec, code, hardware)
    report.score = None
    if refused:
        return report
    try:
        cases = [*spec.examples(), *harness_class.custom_cases(spec, list(custom_inputs))]
    except ValueError as error:
        # Checked when the Run was made; only an edit of the problem since can get here.
        report.message = f"your inputs no longer fit the problem (it changed): {error}"
        return report
    session = SandboxSession(harness_class, code, spec.entry_point, spec.limits)
    report.sandbox = session.kind
    try:
        harness = harness_class(dataclasses.replace(spec, tests=cases))
        report.tests, report.verdict, report.message = _tests_run(harness, session, seed, progress)
    except ProblemError as error:
        report.verdict = Verdict.INTERNAL_ERROR
        report.message = f"the problem is broken (our fault, not yours): {error}"
    finally:
        session.close()
        report.stdout, report.stderr = session.output()
    if report.tests:
        passed = sum(test.verdict is Verdict.ACCEPTED for test in report.tests)
        summary = f"{passed} of {len(cases)} examples passed"
        failed = report.verdict is not Verdict.ACCEPTED
        report.message = f"{summary}; {report.message}" if failed else summary
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
