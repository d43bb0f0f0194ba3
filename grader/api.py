"""The grader's REST endpoints: problems, submissions, their live events, API tokens.

Endpoints stay thin: parse, call one service or selector, return. Every refusal is a 4xx JSON
body naming the field and the rule (see ``interview.api`` for the error format).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema, Status
from ninja import Path as PathParam
from ninja.errors import HttpError
from pydantic import ConfigDict

from grader import access, selectors
from grader.harnesses.function import CUSTOM_EXAMPLE_PREFIX
from grader.input_guard import MAX_ID, whole_number
from grader.models import Problem, Queue, Submission
from grader.services import SubmissionRejected

router = Router(tags=["grader"])

# The largest source any problem accepts; a problem may set a smaller limit of its own.
MAX_SOURCE_BYTES = 256 * 1024
# The most inputs of one's own, and rows in one, any problem takes (a problem's custom_inputs
# sets its own, smaller limits): bounds what the body parser builds before they are checked.
MAX_CUSTOM_INPUTS = 16
MAX_CUSTOM_ROWS = 4096
# How often the event stream looks for new events, and how long it stays open without any.
EVENTS_POLL_S = 0.25
EVENTS_IDLE_TIMEOUT_S = 600
FINAL_EVENT_KINDS = {"done", "aborted"}


class ProblemOut(Schema):
    slug: str
    title: str
    harness: str
    queue: str
    difficulty: str = Field(description="easy, medium or hard")
    expected_min: int = Field(description="minutes a candidate needs; mock loops fit rounds to it")


def problem_out(problem: Problem) -> ProblemOut:
    difficulty, expected_min = selectors.problem_fit(problem)
    return ProblemOut(
        slug=problem.slug,
        title=problem.title,
        harness=problem.harness,
        queue=problem.queue,
        difficulty=difficulty,
        expected_min=expected_min,
    )


class CardClassOut(Schema):
    queue: str = Field(description='the value to send as "card": gpu.<class>')
    card: str = Field(description="the card's name, as its workers report it")
    workers: int
    waiting: int
    running: int


class ProblemDetailOut(ProblemOut):
    statement_md: str
    starter_code: str
    limits: dict
    cards: list[CardClassOut] = Field(
        description="GPU problems, and engine problems with the GPU tier: the card classes "
        "with a live worker, with queue lengths"
    )
    correctness_only: str = Field(
        description='GPU problems: the "card" value for correctness only on a CPU worker '
        "(Triton's interpreter, speed not measured); the default when no card is live"
    )
    examples: list[str] = Field(description="the public tests a Run tries (POST /api/runs)")
    custom_inputs: dict = Field(
        description="what a Run takes of inputs you write (max_inputs, max_values); empty: none"
    )
    editorial_md: str | None = Field(
        description="the editorial (the idea, the pitfalls, the complexity, the reference); "
        "null until you have an accepted submission of the problem"
    )


# Text the API takes never holds a NUL character (PostgreSQL stores none; the input guard
# refuses it): the document says so, so that clients and fuzzers know.
NO_NUL = r"^[^\x00]*$"


class InputSchema(Schema):
    """A request body: its fields and nothing else, so the document describes every byte
    the server reads."""

    model_config = ConfigDict(extra="forbid")


class SubmissionIn(InputSchema):
    problem: str = Field(
        min_length=1, max_length=100, pattern=r"^[-a-z0-9]+$", description="problem slug"
    )
    code: str = Field(
        min_length=1, max_length=MAX_SOURCE_BYTES, pattern=NO_NUL, description="Python source"
    )
    card: str = Field(
        "",
        max_length=50,
        pattern=r"^[-a-z0-9.]*$",
        description="GPU problems: a card class from the problem's cards (gpu.h100), or its "
        "correctness_only value; empty: the live class with the shortest queue, else "
        "correctness only. Engine problems with the GPU tier: a card class from their cards "
        "runs the throughput test on that card; empty: the cpu queue (the tiny model)",
    )


class TestOut(Schema):
    index: int
    name: str
    verdict: str
    time_ms: float | None
    message: str


class SpeedOut(Schema):
    median_ms: float
    reference_median_ms: float | None
    tflop_per_s: float | None
    gb_per_s: float | None
    bound: str = Field(
        description='"compute" or "memory": which of the card\'s ceilings limits the call'
    )
    peak_pct: float | None = Field(description="of the card's measured peak for that bound")
    card: str


class SubmissionOut(Schema):
    id: int
    problem: str
    state: str
    phase: str
    verdict: str
    score: float | None = Field(
        description="the speed ratio to the reference; null unless measured"
    )
    speed_measured: bool = Field(description="false: correctness only, no speed was measured")
    speed: SpeedOut | None = Field(description="what the worker measured; null when nothing was")
    queue: str
    message: str
    sandbox: str
    hardware: str
    created_at: datetime
    graded_at: datetime | None
    tests: list[TestOut]


class ErrorOut(Schema):
    detail: str
    errors: list[dict] = []


# What any operation may answer besides success: unparseable body, no or bad token, an unknown
# object, input that breaks a rule.
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# A submission can also meet a reused idempotency key, a rate limit, or a full queue.
SUBMIT_ERRORS = ERRORS | {409: ErrorOut, 429: ErrorOut, 503: ErrorOut}


def submission_out(submission: Submission) -> SubmissionOut:
    return SubmissionOut(
        id=submission.pk,
        problem=submission.problem.slug,
        state=submission.state,
        phase=submission.phase,
        verdict=submission.verdict,
        score=submission.score,
        speed_measured=submission.speed_measured,
        speed=vars(speed) if (speed := selectors.submission_speed(submission)) else None,
        queue=selectors.submission_queue(submission),
        message=submission.message,
        sandbox=submission.sandbox,
        hardware=(submission.hardware or {}).get("label", ""),
        created_at=submission.created_at,
        graded_at=submission.graded_at,
        tests=[
            TestOut(
                index=t.index, name=t.name, verdict=t.verdict, time_ms=t.time_ms, message=t.message
            )
            for t in submission.tests.all()
        ],
    )


def _problem_or_404(slug: str) -> Problem:
    try:
        return selectors.problem_published_get(slug)
    except Problem.DoesNotExist:
        raise HttpError(404, f"problem: no published problem {slug!r}") from None


@router.get(
    "/problems",
    response={200: list[ProblemOut], **ERRORS},
    summary="List the published coding problems",
)
def problems_list(request: HttpRequest):
    return [problem_out(problem) for problem in selectors.problems_published()]


@router.get(
    "/problems/{slug}",
    response={200: ProblemDetailOut, **ERRORS},
    summary="A problem's statement and starter code",
)
def problem_detail(request: HttpRequest, slug: str = PathParam(..., pattern=NO_NUL)):
    problem = _problem_or_404(slug)
    spec = problem.as_spec()
    gpu = problem.queue == Queue.GPU
    offers_cards = gpu or selectors.problem_gpu_tier(problem)
    return ProblemDetailOut(
        **problem_out(problem).model_dump(),
        statement_md=problem.statement_md,
        starter_code=problem.starter_code,
        limits=problem.spec.get("limits", {}),
        cards=[vars(card) for card in selectors.card_classes_live()] if offers_cards else [],
        correctness_only=selectors.CORRECTNESS_ONLY_QUEUE if gpu else "",
        examples=[case["name"] for case in spec.examples()],
        custom_inputs=spec.custom_inputs,
        editorial_md=selectors.problem_editorial_for(request.auth, problem),
    )


@router.post(
    "/submissions",
    response={201: SubmissionOut, 200: SubmissionOut, **SUBMIT_ERRORS},
    summary="Submit code for grading (send Idempotency-Key to make retries safe)",
)
def submission_create(request: HttpRequest, payload: SubmissionIn):
    submission, created = _create_limited(request, payload.problem, payload.code, payload.card)
    return Status(201 if created else 200, submission_out(selectors.submission_get(submission.pk)))


def _create_limited(
    request: HttpRequest, slug: str, code: str, card: str, **run: object
) -> tuple[Submission, bool]:
    """A submission (or with ``run``'s purpose and inputs, a Run) within the user's limits,
    made once per Idempotency-Key; a refusal of the code or the inputs is a 422 naming it."""
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > 255:
        raise HttpError(422, "Idempotency-Key: at most 255 characters")
    problem = _problem_or_404(slug)
    try:
        return access.submission_create_limited(
            user=request.auth, problem=problem, code=code, idempotency_key=key, queue=card, **run
        )
    except SubmissionRejected as error:
        detail = str(error) if str(error).startswith("inputs:") else f"code: {error}"
        raise HttpError(422, detail) from None


@router.get(
    "/submissions",
    response={200: list[SubmissionOut], **ERRORS},
    summary="Your submissions, newest first",
)
def submissions_list(
    request: HttpRequest,
    problem: str | None = Query(None, max_length=100, pattern=NO_NUL),
    limit: int = Query(20, ge=1, le=100),
):
    return [
        submission_out(s)
        for s in selectors.submissions_of(request.auth, problem_slug=problem, limit=limit)
    ]


@router.get(
    "/submissions/{submission_id}",
    response={200: SubmissionOut, **ERRORS},
    summary="A submission with its per-test results",
)
def submission_detail(request: HttpRequest, submission_id: int):
    if not selectors.submission_visible_to(submission_id, request.auth):
        raise HttpError(404, f"no submission {submission_id} of yours")
    submission = selectors.submission_get(submission_id)
    if submission.purpose == Submission.Purpose.RUN:
        raise HttpError(
            404, f"no submission {submission_id}: it is a Run, at /api/runs/{submission_id}"
        )
    return submission_out(submission)


class CustomInputIn(InputSchema):
    values: list[list[float | Literal["inf", "-inf"]]] = Field(
        min_length=1,
        max_length=MAX_CUSTOM_ROWS,
        description='rows of numbers ("inf" and "-inf" as strings), all of one length',
    )
    dtype: str = Field("float64", max_length=20, pattern=NO_NUL, description="float32 or float64")


class RunIn(InputSchema):
    problem: str = Field(
        min_length=1, max_length=100, pattern=r"^[-a-z0-9]+$", description="problem slug"
    )
    code: str = Field(
        min_length=1, max_length=MAX_SOURCE_BYTES, pattern=NO_NUL, description="Python source"
    )
    inputs: list[CustomInputIn] = Field(
        [],
        max_length=MAX_CUSTOM_INPUTS,
        description="function problems: inputs of your own, checked against the problem's "
        "custom_inputs limits; their expected outputs are computed on our side",
    )
    card: str = Field(
        "",
        max_length=50,
        pattern=r"^[-a-z0-9.]*$",
        description="as for a submission: GPU problems choose a card class or correctness_only",
    )


class ExampleOut(Schema):
    index: int
    name: str
    custom: bool = Field(description="an input you wrote (your-input-N), not a public example")
    verdict: str
    time_ms: float | None
    message: str = Field(description="what was wrong: for a wrong answer, the first mismatches")
    details: dict = Field(
        description="mismatches (index, got, expected); for a small input of yours that "
        "passed, its output and the expected one"
    )


class RunOut(Schema):
    id: int
    problem: str
    state: str = Field(description="queued, running, graded (done) or aborted")
    verdict: str = Field(description="the first failing example's verdict; accepted: all passed")
    message: str
    examples: list[ExampleOut]
    stdout: str
    stderr: str
    sandbox: str
    events_url: str = Field(description="Server-Sent Events of its progress, as a submission's")
    created_at: datetime
    graded_at: datetime | None


def run_out(run: Submission) -> RunOut:
    output = run.output or {}
    return RunOut(
        id=run.pk,
        problem=run.problem.slug,
        state=run.state,
        verdict=run.verdict,
        message=run.message,
        examples=[
            ExampleOut(
                index=t.index,
                name=t.name,
                custom=t.name.startswith(CUSTOM_EXAMPLE_PREFIX),
                verdict=t.verdict,
                time_ms=t.time_ms,
                message=t.message,
                details=t.details or {},
            )
            for t in run.tests.all()
        ],
        stdout=output.get("stdout", ""),
        stderr=output.get("stderr", ""),
        sandbox=run.sandbox,
        events_url=f"/api/submissions/{run.pk}/events",
        created_at=run.created_at,
        graded_at=run.graded_at,
    )


@router.post(
    "/runs",
    response={201: RunOut, 200: RunOut, **SUBMIT_ERRORS},
    summary="Run code on the problem's public examples (and inputs of your own) without a "
    "grade: no reference, no timing, no score, never on a leaderboard; counts against the "
    "submission limits",
)
def run_create(request: HttpRequest, payload: RunIn):
    run, created = _create_limited(
        request,
        payload.problem,
        payload.code,
        payload.card,
        purpose=Submission.Purpose.RUN,
        run_inputs=[item.model_dump() for item in payload.inputs],
    )
    return Status(201 if created else 200, run_out(selectors.run_of(run.pk, request.auth)))


@router.get(
    "/runs/{run_id}",
    response={200: RunOut, **ERRORS},
    summary="A Run with each example's outcome",
)
def run_detail(request: HttpRequest, run_id: int = PathParam(..., ge=1, le=MAX_ID)):
    try:
        return run_out(selectors.run_of(run_id, request.auth))
    except Submission.DoesNotExist:
        raise HttpError(404, f"no run {run_id} of yours") from None


def _sse(event) -> str:
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {json.dumps(event.as_message())}\n\n"


async def _event_stream(submission_id: int, after_seq: int) -> AsyncIterator[str]:
    idle_s = 0.0
    while idle_s < EVENTS_IDLE_TIMEOUT_S:
        events = await sync_to_async(selectors.submission_events_after)(submission_id, after_seq)
        for event in events:
            after_seq = event.seq
            yield _sse(event)
            if event.kind in FINAL_EVENT_KINDS:
                return
        if events:
            idle_s = 0.0
        else:
            # A comment line keeps proxies from closing an idle stream.
            yield ": waiting\n\n"
            await asyncio.sleep(EVENTS_POLL_S)
            idle_s += EVENTS_POLL_S


@router.get(
    "/submissions/{submission_id}/events",
    response={200: None, **ERRORS},
    summary="Server-Sent Events of a submission's progress; resumes after Last-Event-ID",
    # Keyed by the int 200, as `response=` is: a string "200" would be a second key that
    # serialises to a duplicate "200" in the JSON document.
    openapi_extra={
        "responses": {
            200: {"description": "text/event-stream", "content": {"text/event-stream": {}}}
        }
    },
)
async def submission_events(
    request: HttpRequest,
    submission_id: int,
    last_event_id: int | None = Query(None, ge=0, le=MAX_ID),
):
    visible = await sync_to_async(selectors.submission_visible_to)(submission_id, request.auth)
    if not visible:
        raise HttpError(404, f"no submission {submission_id} of yours")
    header = request.headers.get("Last-Event-ID", "")
    if last_event_id is None and header:
        last_event_id = whole_number(header, "Last-Event-ID")
    response = StreamingHttpResponse(
        _event_stream(submission_id, max(0, last_event_id or 0)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


class TokenIn(InputSchema):
    username: str = Field(min_length=1, max_length=150, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)
    name: str = Field("api", min_length=1, max_length=100, pattern=NO_NUL)


class TokenOut(Schema):
    token: str
    name: str
    prefix: str


@router.post(
    "/auth/token",
    auth=None,
    response={201: TokenOut, **ERRORS, 429: ErrorOut},
    summary="Exchange a username and password for a new personal API token",
)
def token_create(request: HttpRequest, payload: TokenIn):
    token, raw = access.api_token_create_with_password(
        payload.username, payload.password, payload.name, request
    )
    return Status(201, TokenOut(token=raw, name=token.name, prefix=token.prefix))
