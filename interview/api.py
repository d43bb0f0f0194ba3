"""The REST API at /api/: the grader's endpoints plus practice questions and reviews.

One error format for every refusal: ``{"detail": "...", "errors": [{"field", "rule", "message"}]}``
with a 4xx status; a limit adds ``Retry-After``. Authentication is a personal API token
(``Authorization: Bearer ...``) or the site's session (with its CSRF token) for our own pages.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Query, Router, Schema
from ninja import Path as PathParam
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, django_auth

from grader.access import LimitExceeded, TokenRefused, api_token_authenticate
from grader.api import ERRORS, NO_NUL, InputSchema
from grader.api import router as grader_router
from grader.input_guard import InputRefused, body_too_big, refusal_response
from grader.models import Problem
from grader.selectors import problem_published_get
from interview import coding_selectors, selectors, services
from interview.grading import ResponseInvalid
from interview.models import Question
from interview.views import question_view_model

logger = logging.getLogger(__name__)


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        return api_token_authenticate(token)


api = NinjaAPI(
    title="InferPrep API",
    version="1",
    description=__doc__,
    auth=[TokenAuth(), django_auth],
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def _error(
    request: HttpRequest,
    status: int,
    detail: str,
    errors: list[dict] | None = None,
    retry_after_s: float | None = None,
) -> HttpResponse:
    response = api.create_response(
        request, {"detail": detail, "errors": errors or []}, status=status
    )
    if retry_after_s is not None:
        response["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return response


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {
            "field": ".".join(str(part) for part in error.get("loc", [])),
            "rule": error.get("type", "invalid"),
            "message": error.get("msg", ""),
        }
        for error in exc.errors
    ]
    fields = ", ".join(e["field"] or "body" for e in errors)
    return _error(request, 422, f"invalid request: {fields}", errors)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "authentication required: send 'Authorization: Bearer <token>'")


@api.exception_handler(TokenRefused)
def on_token_refused(request: HttpRequest, exc: TokenRefused) -> HttpResponse:
    response = _error(
        request,
        401,
        f"{exc}; make a new token with `inferprep login` or on your profile page",
        [{"field": "Authorization", "rule": "token", "message": str(exc)}],
    )
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


@api.exception_handler(InputRefused)
def on_input_refused(request: HttpRequest, exc: InputRefused) -> HttpResponse:
    return refusal_response(request, exc)


@api.exception_handler(RequestDataTooBig)
def on_body_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return refusal_response(request, body_too_big())


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "not found")


@api.exception_handler(LimitExceeded)
def on_limit(request: HttpRequest, exc: LimitExceeded) -> HttpResponse:
    return _error(
        request,
        exc.status,
        str(exc),
        [{"field": exc.field, "rule": exc.rule, "message": str(exc)}],
        exc.retry_after_s,
    )


router = Router(tags=["practice"])


class QuestionOut(Schema):
    id: str
    topic: str
    topics: list[str]
    level: str
    type: str


class ChoiceOut(Schema):
    index: int = Field(description="the option's position in this draw; answer with it")
    text: str


class QuestionDrawOut(QuestionOut):
    prompt: str
    choices: list[ChoiceOut] = Field(description="shuffled afresh for every draw")
    unit: str
    token: str = Field(description="send back with the answer: it carries this draw's numbers")


class AnswerIn(InputSchema):
    token: str = Field(min_length=1, max_length=4096, pattern=NO_NUL)
    choice: int | None = Field(None, ge=0, le=100)
    choices: list[int] | None = Field(None, max_length=100)
    value: float | None = None
    text: str | None = Field(None, max_length=10_000, pattern=NO_NUL)


class AnswerOut(Schema):
    correct: bool
    score: float
    expected: str
    explanation: str
    source_title: str
    source_url: str
    missed_points: list[str]


class ReviewOut(Schema):
    card: int
    question: str
    point: str
    due: datetime


def _question_out(question: Question) -> dict:
    return {
        "id": question.bank_id,
        "topic": question.topic,
        "topics": question.topics,
        "level": question.level,
        "type": question.type,
    }


def _question_or_404(question_id: str) -> Question:
    try:
        return selectors.question_published_get(question_id)
    except Question.DoesNotExist:
        raise HttpError(404, f"no published question {question_id!r}") from None


@router.get(
    "/questions", response={200: list[QuestionOut], **ERRORS}, summary="Published concept questions"
)
def questions_list(
    request: HttpRequest,
    topic: str | None = Query(None, max_length=60, pattern=NO_NUL),
    level: str | None = Query(None, max_length=10, pattern=NO_NUL),
):
    return [_question_out(q) for q in selectors.questions_published(topic, level)]


@router.get(
    "/questions/{question_id}",
    response={200: QuestionDrawOut, **ERRORS},
    summary="A question, drawn afresh",
)
def question_draw(request: HttpRequest, question_id: str = PathParam(..., pattern=NO_NUL)):
    question = _question_or_404(question_id)
    draw = services.practice_draw(question)
    view = question_view_model(question, draw.params, option_order=draw.option_order)
    return _question_out(question) | {
        "prompt": view["prompt"],
        "choices": [{"index": i, "text": text} for i, text in view["choices"]],
        "unit": question.spec.get("unit", ""),
        "token": draw.token,
    }


@router.post(
    "/questions/{question_id}/answer",
    response={200: AnswerOut, **ERRORS},
    summary="Answer a drawn question",
)
def question_answer(
    request: HttpRequest, payload: AnswerIn, question_id: str = PathParam(..., pattern=NO_NUL)
):
    question = _question_or_404(question_id)
    data = {k: v for k, v in payload.dict().items() if v is not None and k != "token"}
    try:
        attempt = services.practice_answer(
            user=request.auth, question=question, data=data, token=payload.token
        )
    except ResponseInvalid as error:
        raise HttpError(422, f"answer: {error}") from None
    view = question_view_model(question, attempt.params, attempt)
    return {
        "correct": attempt.correct,
        "score": attempt.score,
        "expected": attempt.feedback.get("expected", ""),
        "explanation": view["explanation"],
        "source_title": question.source_title,
        "source_url": question.source_url,
        "missed_points": attempt.feedback.get("missed_points", []),
    }


@router.get(
    "/reviews",
    response={200: list[ReviewOut], **ERRORS},
    summary="Your review cards that are due now",
)
def reviews_due(request: HttpRequest):
    return [
        {
            "card": card.pk,
            "question": card.question.bank_id,
            "point": card.point_id,
            "due": card.due,
        }
        for card in selectors.reviews_due(request.auth).select_related("question")
    ]


class BoardEntryOut(Schema):
    rank: int
    username: str
    score: float = Field(description="the reference's median time over this solution's")
    median_ms: float | None
    submission: int


class BoardOut(Schema):
    hardware: str = Field(description="the card class's queue (gpu.h100), else the CPU model")
    card: str
    peaks: dict | None = Field(description="the card's measured ceilings (speed_of_light)")
    entries: list[BoardEntryOut]


@router.get(
    "/leaderboards/{slug}",
    response={200: list[BoardOut], **ERRORS},
    summary="A problem's leaderboards: one per card class, timed and accepted solutions only",
)
def leaderboard(request: HttpRequest, slug: str = PathParam(..., pattern=NO_NUL)):
    try:
        problem = problem_published_get(slug)
    except Problem.DoesNotExist:
        raise HttpError(404, f"problem: no published problem {slug!r}") from None
    return [
        {
            "hardware": board.hardware,
            "card": board.card,
            "peaks": board.peaks,
            "entries": [
                {
                    "rank": entry.rank,
                    "username": entry.username,
                    "score": entry.submission.score,
                    "median_ms": entry.speed.median_ms if entry.speed else None,
                    "submission": entry.submission.pk,
                }
                for entry in board.entries
            ],
        }
        for board in coding_selectors.leaderboards(problem)
    ]


api.add_router("/", grader_router)
api.add_router("/", router)
