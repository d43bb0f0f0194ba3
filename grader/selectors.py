"""Grader selectors: the functions that read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from grader.bank import DIFFICULTIES, problem_validation_hash
from grader.conf import grader_settings
from grader.harnesses.contract import Verdict
from grader.models import (
    CARD_QUEUE_PREFIX,
    ApiToken,
    Problem,
    ProblemValidation,
    Queue,
    Submission,
    SubmissionEvent,
    Worker,
)


def workers_alive() -> QuerySet[Worker]:
    """Workers whose heartbeat is younger than ``WORKER_ALIVE_S``."""
    since = timezone.now() - timedelta(seconds=grader_settings.WORKER_ALIVE_S)
    return Worker.objects.filter(last_seen_at__gte=since).order_by("hostname")


def workers_serving(queue: str) -> list[Worker]:
    """Live workers (see ``workers_alive``) that consume ``queue``."""
    return [worker for worker in workers_alive() if queue in worker.queues]


@dataclass(frozen=True)
class CardClass:
    """A class of GPU cards with a live worker: its queue and how busy it is."""

    queue: str  # "gpu.h100"
    card: str  # the card's name as its workers' heartbeats say it
    workers: int
    waiting: int  # submissions queued for it
    running: int


def card_classes_live() -> list[CardClass]:
    """Every card class at least one live worker consumes, by queue name, with queue lengths
    counted from the submissions table (the outbox: whatever the broker holds is in it)."""
    cards: dict[str, list[str]] = {}
    for worker in workers_alive():
        gpus = (worker.hardware or {}).get("gpus") or []
        for queue in worker.queues:
            if queue.startswith(CARD_QUEUE_PREFIX):
                cards.setdefault(queue, []).append(gpus[0]["name"] if gpus else "")
    counts = {
        row["queue"]: row
        for row in Submission.objects.filter(queue__in=cards)
        .values("queue")
        .annotate(
            waiting=Count("pk", filter=Q(state=Submission.State.QUEUED)),
            running=Count("pk", filter=Q(state=Submission.State.RUNNING)),
        )
    }
    return [
        CardClass(
            queue=queue,
            card=next((name for name in names if name), queue.removeprefix(CARD_QUEUE_PREFIX)),
            workers=len(names),
            waiting=counts.get(queue, {}).get("waiting", 0),
            running=counts.get(queue, {}).get("running", 0),
        )
        for queue, names in sorted(cards.items())
    ]


# A GPU problem's submission sent to a CPU worker: checked under Triton's interpreter, not timed.
CORRECTNESS_ONLY_QUEUE = Queue.CPU


def problem_gpu_tier(problem: Problem) -> bool:
    """A CPU problem with the GPU tier: an engine problem whose tests include a throughput run
    (``throughput: true``), which a card class's worker serves on its card when the submitter
    chooses one (the cpu queue, the default, serves it on the tiny model, labelled CPU)."""
    return problem.queue == Queue.CPU and any(
        case.get("throughput") for case in problem.spec.get("tests", [])
    )


CORRECTNESS_ONLY_LABEL = "correctness only: no GPU"
NO_CARD_NOTE = (
    "No GPU worker is running: you can have your solution checked for correctness on a CPU "
    "worker under Triton's interpreter (TRITON_INTERPRET=1); its speed will not be measured."
)
NO_WORKER_NOTE = "No worker is running: it will be graded when one starts."


@dataclass(frozen=True)
class MeasuredSpeed:
    """A timed solution's speed as the worker measured it; absent when nothing was timed."""

    median_ms: float
    reference_median_ms: float | None
    tflop_per_s: float | None  # the timed call's FLOPs over its median time
    gb_per_s: float | None  # its fewest bytes over its median time
    bound: str  # which ceiling of the card limits it: "compute" or "memory"
    peak_pct: float | None  # of the card's measured peak for that bound
    card: str


def submission_speed(submission: Submission) -> MeasuredSpeed | None:
    """What a timed submission achieved (TFLOP/s, GB/s, % of the card's measured peak); None
    unless a worker timed it: no number that was not measured."""
    if not submission.speed_measured:
        return None
    timing = submission.timing or {}
    median_s = float(timing["candidate"]["median_ns"]) / 1e9
    reference = timing.get("reference") or {}
    bound = timing.get("speed_of_light") or {}
    flops, work_bytes = bound.get("flops") or 0, bound.get("bytes") or 0
    flops_per_s = flops / median_s if flops and median_s else None
    bytes_per_s = work_bytes / median_s if work_bytes and median_s else None
    kind = bound.get("bound", "")
    achieved, peak = (
        (flops_per_s, bound.get("flops_per_s"))
        if kind == "compute"
        else (bytes_per_s, bound.get("bytes_per_s"))
    )
    return MeasuredSpeed(
        median_ms=median_s * 1e3,
        reference_median_ms=float(reference["median_ns"]) / 1e6 if reference else None,
        tflop_per_s=flops_per_s / 1e12 if flops_per_s else None,
        gb_per_s=bytes_per_s / 1e9 if bytes_per_s else None,
        bound=kind,
        peak_pct=100 * achieved / peak if achieved and peak else None,
        card=(submission.hardware or {}).get("label", ""),
    )


def submission_queue(submission: Submission) -> str:
    """The queue a submission's job goes to (rows from before routing: the problem's)."""
    return submission.queue or submission.problem.queue


def problem_queue_note(problem: Problem) -> str:
    """What a problem page says before anyone submits: a GPU problem with no live card class
    offers correctness only (``NO_CARD_NOTE``); any queue no live worker serves, NO_WORKER_NOTE."""
    if problem.queue == Queue.GPU:
        if card_classes_live():
            return ""
        return queue_unserved_note(CORRECTNESS_ONLY_QUEUE) or NO_CARD_NOTE
    return queue_unserved_note(problem.queue)


def queue_unserved_note(queue: str) -> str:
    """What a page says of a submission waiting on ``queue``: NO_WORKER_NOTE while no live
    worker consumes it (instead of a progress bar that never moves), else nothing."""
    return "" if workers_serving(queue) else NO_WORKER_NOTE


def submission_get(submission_id: int) -> Submission:
    """One submission with its problem and tests (raises Submission.DoesNotExist)."""
    return (
        Submission.objects.select_related("problem", "user")
        .prefetch_related("tests")
        .get(pk=submission_id)
    )


def submission_events_after(submission_id: int, after_seq: int = 0) -> list[SubmissionEvent]:
    """The submission's events with ``seq > after_seq``, in order: what a client missed."""
    return list(SubmissionEvent.objects.filter(submission_id=submission_id, seq__gt=after_seq))


def submission_visible_to(submission_id: int, user) -> bool:
    """Whether ``user`` may watch this submission: its author or staff."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return Submission.objects.filter(pk=submission_id, user_id=user.pk).exists()


def problems_published() -> QuerySet[Problem]:
    """Published problems, by slug."""
    return Problem.objects.filter(published=True).order_by("slug")


def problem_fit(problem: Problem) -> tuple[str, int]:
    """A coding problem's difficulty and expected minutes (problem.yaml's ``difficulty`` and
    ``expected_min``, checked by the loader and the admin); a row that gives neither (made
    before difficulties existed) counts as easy and fits any round in the round's own time."""
    return problem.spec.get("difficulty", DIFFICULTIES[0]), int(problem.spec.get("expected_min", 0))


def problem_published_get(slug: str) -> Problem:
    """One published problem (raises Problem.DoesNotExist)."""
    return Problem.objects.get(slug=slug, published=True)


def submissions_of(user, problem_slug: str | None = None, limit: int = 50) -> list[Submission]:
    """A user's latest submissions, newest first, optionally of one problem (not their Runs)."""
    submissions = Submission.objects.filter(user_id=user.pk).exclude(purpose=Submission.Purpose.RUN)
    submissions = submissions.select_related("problem")
    if problem_slug:
        submissions = submissions.filter(problem__slug=problem_slug)
    return list(submissions.order_by("-created_at", "-pk")[:limit])


def problem_solved_by(user, problem: Problem) -> bool:
    """Whether ``user`` has an accepted submission of ``problem`` (a Run's examples passing
    is not one): what opens the problem's editorial."""
    if user is None or not user.is_authenticated:
        return False
    return submissions_accepted_of(user).filter(problem=problem).exists()


def problem_editorial_for(user, problem: Problem) -> str | None:
    """The problem's editorial (Markdown) for a user who solved it; None for anybody else, so
    no page or API answer carries it before then."""
    if problem.editorial_md and problem_solved_by(user, problem):
        return problem.editorial_md
    return None


def run_of(run_id: int, user) -> Submission:
    """One of ``user``'s Runs with its examples' results (raises Submission.DoesNotExist for
    another user's, or for a submission that is not a Run)."""
    if user is None or not user.is_authenticated:
        raise Submission.DoesNotExist
    return (
        Submission.objects.select_related("problem")
        .prefetch_related("tests")
        .get(pk=run_id, user_id=user.pk, purpose=Submission.Purpose.RUN)
    )


def problem_find(slug: str) -> Problem | None:
    """A problem by slug, published or not (a loop's round keeps the problem it opened with)."""
    return Problem.objects.filter(slug=slug).first()


def submissions_between(
    user_id: int, problem_slug: str, start: datetime, end: datetime | None = None
) -> QuerySet[Submission]:
    """A user's submissions to one problem made in ``[start, end]`` (no end: up to now),
    oldest first, with the problem version each was graded against (a Run is none of them)."""
    submissions = Submission.objects.filter(
        user_id=user_id, problem__slug=problem_slug, created_at__gte=start
    ).exclude(purpose=Submission.Purpose.RUN)
    if end is not None:
        submissions = submissions.filter(created_at__lte=end)
    return submissions.select_related("problem_version").order_by("created_at", "pk")


def submission_last_at(
    user_id: int, problem_slug: str, start: datetime, end: datetime | None = None
) -> datetime | None:
    """When the user last submitted to the problem in ``[start, end]``; None if never."""
    window = submissions_between(user_id, problem_slug, start, end)
    return window.aggregate(last=Max("created_at"))["last"]


def submissions_accepted_of(user) -> QuerySet[Submission]:
    """A user's accepted submissions with their problems' slugs, speed and timing (a Run that
    passed its examples is not one)."""
    accepted = Submission.objects.filter(user=user, verdict=Verdict.ACCEPTED).exclude(
        purpose=Submission.Purpose.RUN
    )
    return accepted.select_related("problem").only("problem__slug", "score", "timing", "verdict")


# Verdicts a leaderboard never shows: a suspect time waits for an admin's review.
HIDDEN_VERDICTS = ("suspect",)


def submissions_on_leaderboard(problem: Problem | None = None) -> QuerySet[Submission]:
    """Accepted, timed, not-under-review submissions of published problems: the only ones a
    leaderboard may show (optionally of one problem)."""
    submissions = Submission.objects.filter(
        state=Submission.State.GRADED,
        verdict=Verdict.ACCEPTED,
        # None: correct but not timed (a kernel checked on a CPU worker); 0: before that.
        score__isnull=False,
        score__gt=0,
        needs_review=False,
        problem__published=True,
    ).exclude(purpose=Submission.Purpose.RUN)
    submissions = submissions.select_related("user", "problem")
    if problem is not None:
        submissions = submissions.filter(problem=problem)
    return submissions.exclude(verdict__in=HIDDEN_VERDICTS)


def api_tokens_of(user) -> QuerySet[ApiToken]:
    """A user's API tokens, newest first (only their hashes are stored)."""
    return ApiToken.objects.filter(user=user)


@dataclass(frozen=True)
class ValidationRow:
    """One solution of a validation run: what it must get, what it got, and whether it did."""

    name: str
    expect: str
    state: str
    verdict: str
    message: str
    ok: bool | None  # None while it waits for its verdict


@dataclass(frozen=True)
class ValidationStatus:
    """A validation run as a whole: "running", "passed" or "failed", with its rows."""

    state: str
    rows: list[ValidationRow]
    current: bool  # whether it was run on the problem's content as it is now


def problem_validation_status(validation: ProblemValidation) -> ValidationStatus:
    """Read a validation run: the reference must be accepted and every check must not be."""
    ids = [run["submission"] for run in validation.runs if run.get("submission")]
    submissions = Submission.objects.in_bulk(ids)
    rows = []
    for run in validation.runs:
        submission = submissions.get(run.get("submission"))
        if submission is None:
            rows.append(
                ValidationRow(
                    run["name"], run["expect"], "refused", "", run.get("refused", "gone"),
                    run["expect"] == "rejected",
                )
            )  # fmt: skip
            continue
        done = submission.state in (Submission.State.GRADED, Submission.State.ABORTED)
        accepted = submission.verdict == Verdict.ACCEPTED
        # An aborted run or an internal error (ours) proves nothing either way.
        inconclusive = submission.state == Submission.State.ABORTED or (
            submission.verdict == Verdict.INTERNAL_ERROR
        )
        rows.append(
            ValidationRow(
                name=run["name"],
                expect=run["expect"],
                state=submission.state,
                verdict=submission.verdict,
                message=submission.message[:300],
                ok=(not inconclusive and accepted == (run["expect"] == "accepted"))
                if done
                else None,
            )
        )
    if any(row.ok is False for row in rows):
        state = "failed"
    elif any(row.ok is None for row in rows):
        state = "running"
    else:
        state = "passed"
    current = validation.content_hash == problem_validation_hash(validation.problem)
    return ValidationStatus(state, rows, current)


def problem_publish_blocker(problem: Problem, content_hash: str) -> str | None:
    """Why ``problem`` with content ``content_hash`` (problem_validation_hash) may not be
    published: no passed validation run on exactly that content. None: it may."""
    latest = problem.validations.filter(content_hash=content_hash).first() if problem.pk else None
    if latest is None:
        return "validate it first: its reference and checks have not been graded on this content"
    status = problem_validation_status(latest)
    if status.state == "running":
        return "its validation is still running: publish once every verdict is in"
    if status.state == "failed":
        wrong = ", ".join(row.name for row in status.rows if row.ok is False)
        return f"its validation failed ({wrong}): the reference must be accepted, the checks not"
    return None
