"""Grader services: the functions that write."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import OperationalError, close_old_connections, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from engine.hardware import detect_hardware
from grader.bank import problem_snapshot, problem_validation_hash
from grader.conf import grader_settings
from grader.grading import grade, run_examples
from grader.harnesses import harness_get
from grader.harnesses.contract import GradeReport, Verdict, json_safe
from grader.harnesses.timing import device_state
from grader.models import (
    Problem,
    ProblemValidation,
    Queue,
    Submission,
    SubmissionEvent,
    TestResult,
    Worker,
)
from grader.sandbox import sandbox_kind
from grader.selectors import (
    CORRECTNESS_ONLY_QUEUE,
    card_classes_live,
    problem_gpu_tier,
    submission_queue,
)
from grader.versions import version_record

logger = logging.getLogger(__name__)

# The order in which one user's waiting submissions go to the broker: a live interview first,
# then practice, then re-grading.
DISPATCH_ORDER = {
    Submission.Purpose.INTERVIEW: 0,
    Submission.Purpose.PRACTICE: 1,
    Submission.Purpose.REGRADE: 2,
    Submission.Purpose.VALIDATION: 1,
    Submission.Purpose.RUN: 1,
}
# Celery priorities (Redis transport: 0 is served first). Interview and practice share one:
# each user holds one job in the broker, so users' jobs are served in the order they were
# dispatched and a flood delays anybody else by one job at most. A higher priority for
# interviews let one user's stream of interview jobs pass another's waiting practice job
# every time. Re-grading yields to both.
BROKER_PRIORITY = {
    Submission.Purpose.INTERVIEW: 3,
    Submission.Purpose.PRACTICE: 3,
    Submission.Purpose.REGRADE: 6,
    # An author waits for it as a candidate waits for practice.
    Submission.Purpose.VALIDATION: 3,
    # A candidate waits for a Run as for a submission, and it is a small job.
    Submission.Purpose.RUN: 3,
}
# A publish that cannot reach the broker gives up after this (the row stays in the outbox and
# is sent again later) rather than holding a request or the dispatch lock for long.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0.2,
    "interval_step": 0,
    "interval_max": 0.2,
}
# Events after which a submission holds no job in the broker any more.
FINAL_EVENT_KINDS = {SubmissionEvent.Kind.DONE, SubmissionEvent.Kind.ABORTED}
# How often a running job proves it is alive; GRADER_LOST_AFTER_S declares it lost.
SUBMISSION_HEARTBEAT_S = 2.0
# A lost or infrastructure-failed job is re-queued this many times before it is an internal error.
MAX_ATTEMPTS = 3
# Seconds before a retry after an infrastructure error, doubling per attempt.
RETRY_BACKOFF_S = 2
# A progress write that finds the database busy is retried this often, this far apart (s),
# before the job counts as an infrastructure failure.
WRITE_ATTEMPTS = 5
WRITE_RETRY_S = 0.1


class SubmissionRejected(ValueError):
    """The submission cannot be accepted (too large, NUL bytes, unpublished problem)."""


class GradingCancelled(Exception):
    """The submission was aborted or taken over while this worker graded it."""


def worker_heartbeat(
    hostname: str, queues: list[str], started_at: datetime, probe=detect_hardware
) -> Worker:
    """Record that a worker is alive now, with its queues and hardware: ``probe()``'s
    :class:`engine.hardware.Hardware`, whose ``gpus`` name the card (none without CUDA)."""
    worker, _ = Worker.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": sorted(queues),
            "hardware": probe().as_dict() | {"sandbox": str(sandbox_kind())},
            "started_at": started_at,
            "last_seen_at": timezone.now(),
        },
    )
    return worker


def worker_gone(hostname: str) -> None:
    """Forget a worker that shut down cleanly, so it stops counting as alive at once."""
    Worker.objects.filter(hostname=hostname).delete()


def code_validate(code: str, source_bytes: int) -> None:
    """Refuse code that is too large or not text, with a message the author can act on."""
    if "\x00" in code:
        raise SubmissionRejected("the source contains NUL bytes; submit a plain text file")
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > source_bytes:
        raise SubmissionRejected(
            f"the source is {size} bytes; the limit for this problem is {source_bytes} bytes"
        )


def submission_event_add(
    submission_id: int, kind: str, data: dict | None = None
) -> SubmissionEvent:
    """Persist one progress event with the next sequence number and push it after commit.

    A final event (done, aborted) also frees the user's dispatch slot for their next job.
    """
    with transaction.atomic():
        Submission.objects.filter(pk=submission_id).update(events_count=F("events_count") + 1)
        seq, user_id = Submission.objects.values_list("events_count", "user_id").get(
            pk=submission_id
        )
        event = SubmissionEvent.objects.create(
            submission_id=submission_id, seq=seq, kind=kind, data=data or {}
        )
        transaction.on_commit(lambda: _event_broadcast(event))
        if kind in FINAL_EVENT_KINDS:
            transaction.on_commit(lambda: submission_dispatch_next(user_id), robust=True)
    return event


def submission_group(submission_id: int) -> str:
    """The channel-layer group of one submission's open progress pages."""
    return f"submission.{submission_id}"


def _event_broadcast(event: SubmissionEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            submission_group(event.submission_id),
            {"type": "submission.event", "event": event.as_message()},
        )
    except Exception:  # the events table is the truth; consumers poll it too
        logger.warning("could not broadcast event %s", event.pk, exc_info=True)


def _enqueue(submission: Submission, countdown_s: float = 0) -> None:
    from grader.tasks import grade_submission

    grade_submission.apply_async(
        args=[submission.pk, submission.attempt],
        queue=submission_queue(submission),
        priority=BROKER_PRIORITY[submission.purpose],
        countdown=countdown_s or None,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def submission_queue_choose(problem: Problem, requested: str = "") -> str:
    """The queue a new submission of ``problem`` goes to.

    A CPU problem's is its own, or, for one with the GPU tier (``problem_gpu_tier``), a card
    class with a live worker when requested. A GPU problem's is a card class with a live worker
    (``gpu.h100``): the one requested, else the one with the fewest jobs waiting; or ``cpu``,
    correctness only under Triton's interpreter, when requested or when no card is live.
    A request for a class no live worker serves is refused, naming the live ones.
    """
    if problem.queue != Queue.GPU:
        if not requested or requested == problem.queue:
            return problem.queue
        if not problem_gpu_tier(problem):
            raise SubmissionRejected(f"card: {problem.slug} runs on {problem.queue} workers only")
        live = card_classes_live()
        if requested not in {card.queue for card in live}:
            offered = ", ".join([card.queue for card in live] + [problem.queue])
            raise SubmissionRejected(
                f"card: no live worker serves {requested!r}; choose one of {offered}"
            )
        return requested
    live = card_classes_live()
    if requested == CORRECTNESS_ONLY_QUEUE:
        return requested
    if requested:
        if requested not in {card.queue for card in live}:
            offered = ", ".join([card.queue for card in live] + [CORRECTNESS_ONLY_QUEUE])
            raise SubmissionRejected(
                f"card: no live worker serves {requested!r}; choose one of {offered}"
            )
        return requested
    if not live:
        return CORRECTNESS_ONLY_QUEUE
    return min(live, key=lambda card: (card.waiting + card.running, card.queue)).queue


def submission_create(
    *,
    user,
    problem: Problem,
    code: str,
    language: str = Submission.Language.PYTHON,
    purpose: str = Submission.Purpose.PRACTICE,
    allow_unpublished: bool = False,
    idempotency_key: str = "",
    queue: str = "",
    run_inputs: list[Any] | None = None,
) -> Submission:
    """Validate and store a submission, then queue it for grading once the row is committed.

    A Run (``purpose`` RUN) goes the same way and is graded by ``grading.run_examples``:
    ``run_inputs`` are the inputs the candidate wrote, checked here by the problem's kind.

    No limits here: every path a user submits through calls
    ``grader.access.submission_create_limited``, which calls this; operators' tools (the
    benchmark) call it directly. ``allow_unpublished`` is for authors' previews and
    benchmarks, never for candidates. Each user has one job in the broker at a time (see
    ``submission_dispatch_next``).
    """
    if not problem.published and not allow_unpublished:
        raise SubmissionRejected(f"problem {problem.slug} is not published")
    if language not in Submission.Language.values:
        raise SubmissionRejected(f"language {language!r} is not supported")
    spec = problem.as_spec()
    code_validate(code, spec.limits.source_bytes)
    run_inputs = run_inputs or []
    if purpose == Submission.Purpose.RUN:
        try:
            harness_get(problem.harness).custom_cases(spec, run_inputs)
        except ValueError as error:
            raise SubmissionRejected(f"inputs: {error}") from None
    elif run_inputs:
        raise SubmissionRejected("inputs: only a Run takes inputs of your own")
    queue = submission_queue_choose(problem, queue)
    with transaction.atomic():
        submission = Submission.objects.create(
            user=user,
            problem=problem,
            queue=queue,
            problem_version=version_record(problem, problem_snapshot(problem)),
            code=code,
            run_inputs=run_inputs,
            language=language,
            purpose=purpose,
            seed=secrets.randbits(62),
            idempotency_key=idempotency_key,
        )
        submission_event_add(submission.pk, SubmissionEvent.Kind.QUEUED)
        transaction.on_commit(lambda: submission_dispatch_next(submission.user_id), robust=True)
    return submission


def submission_dispatch_next(user_id: int) -> Submission | None:
    """Send the user's next waiting submission to the broker, unless one of theirs is already
    there or running: each user holds at most one job, so a user who floods the queue delays
    everybody else by one job at most. A live interview goes first, then the oldest.

    The submissions table is the outbox: a row is marked dispatched only once the broker took
    its job, inside the transaction that holds the user's lock. A publish that fails leaves
    it waiting (returns None), and any later dispatch for the user, or the workers' sweep
    (``submissions_dispatch_stalled``), sends it again; a mark lost after a publish that
    worked only sends a duplicate, which the attempt check makes harmless."""
    order = Case(
        *(When(purpose=purpose, then=Value(rank)) for purpose, rank in DISPATCH_ORDER.items()),
        default=Value(9),
    )
    with transaction.atomic():
        # The user's row serialises dispatching for that user (two submits at once).
        get_user_model().objects.select_for_update().filter(pk=user_id).first()
        pending = Submission.objects.filter(
            user_id=user_id, state__in=[Submission.State.QUEUED, Submission.State.RUNNING]
        )
        if pending.filter(dispatched=True).exists():
            return None
        submission = (
            pending.filter(state=Submission.State.QUEUED, dispatched=False)
            .select_related("problem")
            .order_by(order, "created_at")
            .first()
        )
        if submission is None:
            return None
        # An attempt after an infrastructure failure or a lost worker waits, doubling each time
        # (a re-grade counts its attempts on from the grade before).
        retried = submission.attempt and submission.purpose != Submission.Purpose.REGRADE
        backoff_s = RETRY_BACKOFF_S * 2 ** (submission.attempt - 1) if retried else 0
        try:
            _enqueue(submission, backoff_s)
        except Exception:
            logger.warning(
                "the broker did not take submission %s; it waits in the outbox",
                submission.pk,
                exc_info=True,
            )
            return None
        Submission.objects.filter(pk=submission.pk).update(
            dispatched=True, dispatched_at=timezone.now()
        )
    return submission


def submissions_dispatch_stalled() -> int:
    """Dispatch for every user who has waiting submissions but none in the broker (a publish
    that failed while the broker was down); returns how many were sent."""
    users = (
        Submission.objects.filter(state=Submission.State.QUEUED, dispatched=False)
        .values_list("user_id", flat=True)
        .distinct()
    )
    return sum(submission_dispatch_next(user_id) is not None for user_id in list(users))


def submissions_redispatch_lost(queues: list[str], idle_since: datetime) -> int:
    """Send again the jobs the broker lost: submissions dispatched to ``queues`` well before a
    worker consuming them was seen idle (it would have taken them), still not claimed.
    Returns how many were sent."""
    lost = Submission.objects.filter(
        Q(queue__in=queues) | Q(queue="", problem__queue__in=queues),
        state=Submission.State.QUEUED,
        dispatched=True,
    ).filter(
        Q(
            dispatched_at__lt=idle_since
            - timedelta(seconds=grader_settings.GRADER_LOST_MESSAGE_GRACE_S)
        )
        | Q(dispatched_at__isnull=True)
    )
    users = set()
    for submission_id, user_id in list(lost.values_list("pk", "user_id")):
        marked = Submission.objects.filter(
            pk=submission_id, state=Submission.State.QUEUED, dispatched=True
        ).update(dispatched=False)
        if marked:
            logger.warning("submission %s was lost by the broker; sending it again", submission_id)
            users.add(user_id)
    return sum(submission_dispatch_next(user_id) is not None for user_id in users)


def _claim(submission_id: int, attempt: int, hostname: str) -> Submission | None:
    """Move a queued submission of this attempt to running, atomically; None if not ours."""
    with transaction.atomic():
        submission = (
            Submission.objects.select_for_update()
            .select_related("problem")
            .filter(pk=submission_id, state=Submission.State.QUEUED, attempt=attempt)
            .first()
        )
        if submission is None:
            return None
        now = timezone.now()
        submission.state = Submission.State.RUNNING
        submission.phase = Submission.Phase.COMPILING
        submission.worker_hostname = hostname
        submission.started_at = now
        submission.heartbeat_at = now
        submission.save(
            update_fields=["state", "phase", "worker_hostname", "started_at", "heartbeat_at"]
        )
        submission_event_add(submission.pk, SubmissionEvent.Kind.STARTED, {"worker": hostname})
    return submission


def _still_ours(submission_id: int, attempt: int) -> bool:
    """Beat this job's heartbeat; False once it was aborted or re-queued elsewhere."""
    return bool(
        Submission.objects.filter(
            pk=submission_id, state=Submission.State.RUNNING, attempt=attempt
        ).update(heartbeat_at=timezone.now())
    )


class _JobHeartbeat(threading.Thread):
    """Beats a running submission's heartbeat; notices an abort."""

    def __init__(self, submission_id: int, attempt: int) -> None:
        super().__init__(daemon=True, name=f"job-heartbeat-{submission_id}")
        self.submission_id = submission_id
        self.attempt = attempt
        self.stop = threading.Event()
        self.cancelled = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.wait(SUBMISSION_HEARTBEAT_S):
                try:
                    close_old_connections()
                    if not _still_ours(self.submission_id, self.attempt):
                        self.cancelled.set()
                        return
                except Exception:  # the database may blink; the next beat retries
                    logger.warning("job heartbeat failed", exc_info=True)
        finally:
            connection.close()


def _retrying(write, attempts: int = WRITE_ATTEMPTS) -> None:
    """Run a small write, retrying a busy database (SQLite's "database is locked") briefly."""
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                write()
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(WRITE_RETRY_S * (attempt + 1))


def _progress_write(
    submission_id: int, attempt: int, phase: str | None, step: str, data: dict
) -> None:
    if phase is not None:
        Submission.objects.filter(pk=submission_id, attempt=attempt).update(phase=phase)
    submission_event_add(submission_id, step, data)


def submission_grade(submission_id: int, attempt: int, hostname: str) -> Submission | None:
    """Grade a queued submission exactly once; a redelivered or stale message does nothing.

    Candidate failures are verdicts. An infrastructure error re-queues the submission with
    backoff (up to ``MAX_ATTEMPTS``), then becomes an internal error.
    """
    submission = _claim(submission_id, attempt, hostname)
    if submission is None:
        return None
    heartbeat = _JobHeartbeat(submission_id, attempt)
    heartbeat.start()
    phases = {"test": Submission.Phase.TESTING, "benchmarking": Submission.Phase.BENCHMARKING}

    def progress(step: str, data: dict) -> None:
        if heartbeat.cancelled.is_set():
            raise GradingCancelled(f"submission {submission_id} is no longer ours")
        _retrying(lambda: _progress_write(submission_id, attempt, phases.get(step), step, data))

    hardware = detect_hardware().as_dict() | {"device_state": device_state()}
    try:
        if submission.purpose == Submission.Purpose.RUN:
            report = run_examples(
                submission.problem.as_spec(),
                submission.code,
                seed=submission.seed,
                hardware=hardware,
                custom_inputs=submission.run_inputs,
                progress=progress,
            )
        else:
            report = grade(
                submission.problem.as_spec(),
                submission.code,
                seed=submission.seed,
                hardware=hardware,
                progress=progress,
            )
    except GradingCancelled:
        return None
    except Exception as error:
        logger.exception("grading submission %s failed on our side", submission_id)
        return submission_requeue(submission_id, attempt, f"infrastructure error: {error}")
    finally:
        heartbeat.stop.set()
        heartbeat.join()
    try:
        return _result_store(submission_id, attempt, hostname, report)
    except Exception as error:
        logger.exception("storing the result of submission %s failed", submission_id)
        return submission_requeue(submission_id, attempt, f"could not store the result: {error}")


def _result_store(
    submission_id: int, attempt: int, hostname: str, report: GradeReport
) -> Submission | None:
    """Write a report once: only while this attempt still owns the running submission."""
    with transaction.atomic():
        submission = (
            Submission.objects.select_for_update()
            .filter(pk=submission_id, state=Submission.State.RUNNING, attempt=attempt)
            .first()
        )
        if submission is None:
            return None
        submission.state = Submission.State.GRADED
        submission.phase = Submission.Phase.NONE
        submission.verdict = report.verdict
        submission.score = report.score
        submission.message = report.message
        submission.hardware = report.hardware
        submission.sandbox = report.sandbox
        submission.harness_version = report.harness_version
        submission.timing = {
            "candidate": report.candidate.as_dict() if report.candidate else None,
            "reference": report.reference.as_dict() if report.reference else None,
            "nonces": report.nonces,
            "speed_of_light": report.speed_of_light.as_dict() if report.speed_of_light else None,
            "policy": report.policy.as_dict() if report.policy else None,
        }
        submission.output = {"stdout": report.stdout, "stderr": report.stderr}
        submission.needs_review = report.verdict == Verdict.SUSPECT
        submission.graded_at = timezone.now()
        submission.save()
        TestResult.objects.bulk_create(
            TestResult(
                submission=submission,
                index=index,
                name=test.name,
                verdict=test.verdict,
                time_ms=test.time_ms,
                message=test.message,
                details=json_safe(test.details),
            )
            for index, test in enumerate(report.tests)
        )
        submission_event_add(
            submission_id,
            SubmissionEvent.Kind.DONE,
            {"verdict": str(report.verdict), "score": report.score, "worker": hostname},
        )
    return submission


def submission_requeue(submission_id: int, attempt: int, reason: str) -> Submission | None:
    """Give a running attempt back to the queue (or, after MAX_ATTEMPTS, an internal error)."""
    with transaction.atomic():
        submission = (
            Submission.objects.select_for_update()
            .select_related("problem")
            .filter(pk=submission_id, state=Submission.State.RUNNING, attempt=attempt)
            .first()
        )
        if submission is None:
            return None
        if attempt + 1 >= MAX_ATTEMPTS:
            submission.state = Submission.State.GRADED
            submission.verdict = Verdict.INTERNAL_ERROR
            # A Run is never scored (a database constraint).
            submission.score = None if submission.purpose == Submission.Purpose.RUN else 0.0
            submission.message = f"grading failed on our side ({reason}); not your fault"
            submission.graded_at = timezone.now()
            submission.phase = Submission.Phase.NONE
            submission.save()
            submission_event_add(
                submission_id,
                SubmissionEvent.Kind.DONE,
                {
                    "verdict": Verdict.INTERNAL_ERROR.value,
                    "score": submission.score,
                    "reason": reason,
                },
            )
            return submission
        submission.state = Submission.State.QUEUED
        submission.phase = Submission.Phase.NONE
        submission.attempt = attempt + 1
        submission.worker_hostname = ""
        submission.heartbeat_at = None
        submission.dispatched = False
        submission.save()
        submission_event_add(
            submission_id, SubmissionEvent.Kind.REQUEUED, {"reason": reason, "attempt": attempt + 1}
        )
        user_id = submission.user_id
        transaction.on_commit(lambda: submission_dispatch_next(user_id), robust=True)
    return submission


def submissions_reap_lost(now: datetime | None = None) -> int:
    """Re-queue running submissions whose job stopped beating (its worker died); returns how many."""
    lost_before = (now or timezone.now()) - timedelta(seconds=grader_settings.GRADER_LOST_AFTER_S)
    lost = Submission.objects.filter(
        state=Submission.State.RUNNING, heartbeat_at__lt=lost_before
    ).values_list("pk", "attempt", "worker_hostname")
    reaped = 0
    for submission_id, attempt, hostname in list(lost):
        reason = f"worker {hostname or '?'} stopped responding"
        if submission_requeue(submission_id, attempt, reason) is not None:
            reaped += 1
    return reaped


def submission_abort(submission_id: int) -> bool:
    """Abort a queued or running submission; a running job stops at its next step."""
    with transaction.atomic():
        updated = Submission.objects.filter(
            pk=submission_id, state__in=[Submission.State.QUEUED, Submission.State.RUNNING]
        ).update(state=Submission.State.ABORTED, phase=Submission.Phase.NONE)
        if updated:
            submission_event_add(submission_id, SubmissionEvent.Kind.ABORTED)
    return bool(updated)


def problem_regrade(problem: Problem) -> int:
    """Re-queue every graded submission of a problem at re-grading priority (not its Runs,
    which were never scored); returns how many."""
    count = 0
    graded = problem.submissions.filter(state=Submission.State.GRADED)
    for submission_id in graded.exclude(purpose=Submission.Purpose.RUN).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            submission = Submission.objects.select_for_update().get(pk=submission_id)
            if submission.state != Submission.State.GRADED:
                continue
            TestResult.objects.filter(submission=submission).delete()
            submission.state = Submission.State.QUEUED
            submission.verdict = ""
            submission.score = None
            submission.message = ""
            submission.graded_at = None
            submission.purpose = Submission.Purpose.REGRADE
            submission.attempt = F("attempt") + 1
            submission.dispatched = False
            submission.save()
            submission.refresh_from_db()
            submission_event_add(submission.pk, SubmissionEvent.Kind.QUEUED, {"regrade": True})
            transaction.on_commit(
                lambda user_id=submission.user_id: submission_dispatch_next(user_id), robust=True
            )
        count += 1
    return count


def problem_validate(problem: Problem, user) -> ProblemValidation:
    """Grade the problem's reference and each of its check solutions through the real queue,
    as ``user``'s submissions (an author's, so the problem need not be published).

    The run counts for the content it was made on; ``problem_validation_status`` reads it. A
    check the submission path refuses outright (too large, say) is recorded as refused, which
    is a non-accepted verdict."""
    runs = []
    solutions = [("reference", "accepted", problem.reference_code)]
    solutions += [(check["name"], "rejected", check["code"]) for check in problem.checks]
    for name, expect, code in solutions:
        try:
            submission = submission_create(
                user=user,
                problem=problem,
                code=code,
                purpose=Submission.Purpose.VALIDATION,
                allow_unpublished=True,
            )
            runs.append({"name": name, "expect": expect, "submission": submission.pk})
        except SubmissionRejected as error:
            runs.append({"name": name, "expect": expect, "submission": None, "refused": str(error)})
    return ProblemValidation.objects.create(
        problem=problem,
        content_hash=problem_validation_hash(problem),
        runs=runs,
        requested_by=user,
    )
