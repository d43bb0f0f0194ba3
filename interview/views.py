"""Pages: thin views that parse input, call one service or selector, and render."""

from __future__ import annotations

import math
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from grader.access import LimitExceeded
from grader.input_guard import whole_number
from grader.markdown_render import markdown_html, prose
from interview import dashboard_views, selectors, services
from interview.coding_views import run_button_context
from interview.design import render as design_render
from interview.design.practice import (
    AnswerInvalid,
    FollowUpNotDue,
    after_count,
    answer_fields,
    follow_ups_state,
)
from interview.forms import LoopStartForm, SignupForm
from interview.grading import ResponseInvalid
from interview.health import health_report
from interview.models import (
    Attempt,
    Level,
    Loop,
    LoopStatus,
    Question,
    ReviewCard,
    ReviewRating,
    RoundKind,
)
from interview.question_bank import (
    choices_shown,
    expected_number,
    number_format,
    option_label,
    option_order_or_bank,
    template_render,
)
from interview.scorecard_selectors import scorecard_charts


def question_view_model(
    question: Question,
    params: dict[str, Any],
    attempt: Attempt | None = None,
    option_order: list[int] | None = None,
) -> dict[str, Any]:
    """What a page shows of a question: the prompt with this draw's numbers, the options in
    this attempt's shuffled order (an answered attempt's own order), then feedback. An
    answered attempt shows the question as it was answered (its version), not as since edited."""
    version = attempt.question_version if attempt is not None else None
    spec = version.snapshot if version is not None else question.spec
    answer = expected_number(spec, params) if spec["type"] in ("numeric", "parametric") else None
    order = option_order_or_bank(
        spec, attempt.option_order if attempt is not None else option_order
    )
    explanation = (
        template_render(spec["explanation"], params, answer) if params else spec["explanation"]
    )
    return {
        "question": question,
        "spec": spec,
        "prompt": template_render(spec["prompt"], params) if params else spec["prompt"],
        "params": {name: option_label(value) for name, value in params.items()},
        "choices": choices_shown(spec, order),
        # Shown positions of the right options, for a question left unanswered (an answered
        # one shows its own snapshot, ``attempt.feedback["choices"]``).
        "right_positions": [p for p, index in enumerate(order) if index in _right_choices(spec)],
        "expected": _expected_text(spec, answer),
        "given_number": _given_number(attempt),
        "explanation": explanation,
        # Bank explanations are Markdown wrapped at 100 columns: paragraphs, not hard breaks.
        "explanation_html": mark_safe(markdown_html(explanation)),  # noqa: S308 (escaped)
        "attempt": attempt,
        "version": version.number if version is not None else None,
    }


def _right_choices(spec: dict[str, Any]) -> list[int]:
    if spec["type"] == "single_choice":
        return [spec["answer"]]
    if spec["type"] == "multiple_choice":
        return list(spec["answer"])
    return []


def _given_number(attempt: Attempt | None) -> str | None:
    """A numeric answer as the person wrote it, in the right answer's format (393,216, not
    393216.0), so the two read side by side."""
    value = attempt.response.get("value") if attempt is not None else None
    return number_format(value) if value is not None else None


def _expected_text(spec: dict[str, Any], answer: float | None) -> str:
    """The right answer as a person reads it, for a question they have not answered."""
    if spec["type"] in ("single_choice", "multiple_choice"):
        return "; ".join(str(spec["choices"][i]) for i in _right_choices(spec))
    if answer is not None:
        unit = f" {spec['unit']}" if spec.get("unit") else ""
        return f"{number_format(answer)}{unit}"
    return spec.get("model_answer", "")


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard for someone signed in (the same page as /dashboard/), else the welcome."""
    if request.user.is_authenticated:
        return dashboard_views.dashboard_page(request)
    return render(request, "home.html", {"topics": selectors.topics_counts()})


# Addresses of this machine: /healthz shows them its details.
LOCAL_ADDRESSES = {"127.0.0.1", "::1"}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Whether the site can grade; hostnames, hardware, versions and error texts only for
    staff or a request from this machine (not one a local proxy forwarded)."""
    report = health_report()
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META
    local = request.META.get("REMOTE_ADDR") in LOCAL_ADDRESSES and not forwarded
    detailed = local or request.user.is_staff
    return JsonResponse(report.as_dict(detailed), status=200 if report.healthy else 503)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


# ---------------------------------------------------------------- practice


# Questions per practice page; the bank has hundreds, grouped by topic on each page.
PRACTICE_PAGE_SIZE = 40


@login_required
@require_GET
def practice_index(request: HttpRequest) -> HttpResponse:
    filters = {
        "topic": request.GET.get("topic", ""),
        "level": request.GET.get("level", ""),
        "state": request.GET.get("state", ""),
        "search": request.GET.get("q", "").strip()[:100],
    }
    rows = selectors.practice_questions(request.user, **filters)
    page = Paginator(rows, PRACTICE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "interview/practice_index.html",
        filters
        | {
            "page": page,
            "count": len(rows),
            "query": query.urlencode(),
            "topics": selectors.topics_counts(),
            "levels": Level.choices,
            "states": selectors.QuestionState.choices,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def practice_question(request: HttpRequest, bank_id: str) -> HttpResponse:
    question = _published_or_404(bank_id)
    if request.method == "POST":
        token = request.POST.get("token", "")
        try:
            attempt = services.practice_answer(
                user=request.user, question=question, data=request.POST, token=token
            )
        except ResponseInvalid as error:
            return _practice_page(request, question, error=str(error), status=400)
        return render(
            request,
            "interview/practice_question.html",
            {"q": question_view_model(question, attempt.params, attempt), "next": _next(question)},
        )
    return _practice_page(request, question)


def _practice_page(request, question: Question, error: str = "", status: int = 200):
    draw = services.practice_draw(question)
    return render(
        request,
        "interview/practice_question.html",
        {
            "q": question_view_model(question, draw.params, option_order=draw.option_order),
            "token": draw.token,
            "error": error,
        },
        status=status,
    )


def _published_or_404(bank_id: str) -> Question:
    try:
        return selectors.question_published_get(bank_id)
    except Question.DoesNotExist as error:
        raise Http404("no such question") from error


def _next(question: Question) -> Question | None:
    questions = list(
        selectors.questions_published(question.topic).values_list("bank_id", flat=True)
    )
    index = questions.index(question.bank_id) if question.bank_id in questions else -1
    return questions[index + 1] if 0 <= index < len(questions) - 1 else None


# ---------------------------------------------------------------- loops


@login_required
@require_GET
def loops_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "interview/loops_index.html",
        {
            "form": LoopStartForm(),
            "loops": selectors.loops_of(request.user),
            "active_loop": selectors.loop_active_of(request.user),
        },
    )


@login_required
@require_POST
def loop_start(request: HttpRequest) -> HttpResponse:
    form = LoopStartForm(request.POST)
    if not form.is_valid():
        return render(request, "interview/loops_index.html", {"form": form}, status=400)
    try:
        loop = services.loop_start(
            user=request.user,
            level=form.cleaned_data["level"],
            length_min=form.cleaned_data["length_min"],
        )
    except services.LoopError as error:
        messages.error(request, str(error))
        return redirect("loops")
    return redirect("loop-round", loop_id=loop.pk, position=0)


def _loop_or_404(request, loop_id: int):
    try:
        return selectors.loop_get(request.user, loop_id)
    except Loop.DoesNotExist as error:
        raise Http404("no such loop") from error


@login_required
@require_GET
def loop_detail(request: HttpRequest, loop_id: int) -> HttpResponse:
    loop = _loop_or_404(request, loop_id)
    if loop.status == LoopStatus.FINISHED:
        return redirect("loop-scorecard", loop_id=loop.pk)
    return render(
        request, "interview/loop_detail.html", {"loop": loop, "rounds": loop.rounds.all()}
    )


@login_required
@require_GET
def loop_round(request: HttpRequest, loop_id: int, position: int) -> HttpResponse:
    loop = _loop_or_404(request, loop_id)
    if loop.status == LoopStatus.FINISHED:
        return redirect("loop-scorecard", loop_id=loop.pk)
    round_ = get_object_or_404(loop.rounds, position=position)
    return _round_page(request, loop, services.round_open(user=request.user, round_id=round_.pk))


def _round_page(
    request: HttpRequest,
    loop: Loop,
    round_,
    errors: dict[str, str] | None = None,
    status: int | None = None,
) -> HttpResponse:
    """A round's page; a design answer that could not be graded comes back with its errors."""
    context: dict[str, Any] = {"loop": loop, "round": round_, "now": timezone.now()}
    context["next_round"] = loop.rounds.filter(position=round_.position + 1).first()
    if round_.kind == RoundKind.CONCEPTS:
        context["items"] = _concept_items(round_)
    elif round_.kind == RoundKind.CODING:
        context |= selectors.coding_round_context(request.user, round_)
        if context["problem"]:
            problem = context["problem"]
            context["statement_html"] = markdown_html(problem.statement_md)
            # Run, as on the problem page: the public examples, no grade, not in the round.
            context |= run_button_context(problem)
    else:
        context |= _design_round_context(request, loop, round_, errors or {})
    return render(
        request, "interview/loop_round.html", context, status=status or (400 if errors else 200)
    )


def _design_round_context(
    request: HttpRequest, loop: Loop, round_, errors: dict[str, str]
) -> dict[str, Any]:
    """The standalone design round's form and follow-ups, on this round's numbers and clock;
    follow-ups are pushed over the round's WebSocket, their grades wait for the scorecard."""
    prompt = selectors.design_round_prompt(round_)
    if prompt is None:
        return {"design_prompt": None}
    attempt = selectors.design_round_attempt(round_, prompt)
    return (
        {
            "design_prompt": prompt,
            "design_version": round_.design_version.number if round_.design_version_id else None,
            "statement": prose(design_render(prompt.prompt, attempt["params"])),
            "result": attempt["result"],
            "errors": errors,
            "answer_url": reverse("loop-round-submit", args=[loop.pk, round_.position]),
            "follow_ups_socket": f"/ws/loops/rounds/{round_.pk}/follow-ups/",
            "feedback_later": True,
        }
        | _follow_ups_urls(loop, round_)
        | answer_fields(prompt, attempt["params"], request.POST if errors else {}, errors)
        | follow_ups_state(prompt, attempt, timezone.now())
    )


def _follow_ups_urls(loop: Loop, round_) -> dict[str, str]:
    # No trigger of its own: the page's script fetches the fragment when the socket says so.
    url = reverse("loop-follow-ups", args=[loop.pk, round_.position])
    return {"follow_ups_url": url, "follow_up_trigger": ""}


def _concept_items(loop_round) -> list[dict[str, Any]]:
    """A concept round's questions, each with its drawn numbers and the candidate's attempt."""
    return [
        row
        | {
            "q": question_view_model(
                row["question"], row["item"].params, row["attempt"], row["item"].option_order
            )
        }
        for row in selectors.round_items_with_attempts(loop_round)
    ]


def _with_derivation(number: dict[str, Any]) -> dict[str, Any]:
    return number | {"derivation_html": prose(number.get("derivation", ""))}


def _study_plan_titled(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The scorecard's study plan with each question named by its prompt as drawn, not its id."""
    titles = {q["bank_id"]: q["prompt"] for q in card.get("questions", [])}
    return [
        step | {"questions": [{"bank_id": b, "title": titles.get(b, b)} for b in step["questions"]]}
        for step in card.get("study_plan", [])
    ]


@login_required
@require_POST
def loop_answer(request: HttpRequest, loop_id: int, item_id: int) -> HttpResponse:
    # Checked before the answer: whether an empty answer is valid depends on the item drawn
    # (a multiple choice may be left blank), and a malformed form is refused either way.
    position = whole_number(request.POST.get("position", 0), "position")
    try:
        attempt = services.answer_submit(user=request.user, item_id=item_id, data=request.POST)
    except services.LoopNotYours as error:
        raise Http404(str(error)) from error
    except services.LoopError as error:
        return HttpResponse(str(error), status=409, content_type="text/plain")
    except ResponseInvalid as error:
        messages.error(request, str(error))
        return redirect(_round_url(loop_id, position, item_id))
    if attempt.late:
        messages.warning(request, "That answer came after the round's deadline: kept, marked late.")
    return redirect(_round_url(loop_id, attempt.loop_round.position, item_id))


def _round_url(loop_id: int, position: int, item_id: int) -> str:
    return reverse("loop-round", args=[loop_id, position]) + f"#item-{item_id}"


@login_required
@require_POST
def loop_round_submit(request: HttpRequest, loop_id: int, position: int) -> HttpResponse:
    loop = _loop_or_404(request, loop_id)
    round_ = get_object_or_404(loop.rounds, position=position)
    try:
        round_ = services.round_submit(user=request.user, round_id=round_.pk, data=request.POST)
    except services.RoundClosed as error:
        messages.error(request, str(error))
    except services.LoopError as error:
        return HttpResponse(str(error), status=409, content_type="text/plain")
    except LimitExceeded as error:
        messages.error(request, str(error))
        if error.status == 503:  # a dependency is down: say so on the page, with its status
            response = _round_page(request, loop, round_, status=503)
            response["Retry-After"] = str(max(1, math.ceil(error.retry_after_s or 1)))
            return response
    except AnswerInvalid as invalid:
        round_.refresh_from_db()  # the submit opened its clock if the page never had
        return _round_page(request, loop, round_, invalid.errors)
    except ResponseInvalid as error:
        messages.error(request, str(error))
    else:
        if round_.late:
            messages.warning(request, "Submitted after the deadline: kept, marked late.")
        else:
            messages.success(request, "Submitted.")
    return redirect("loop-round", loop_id=loop_id, position=position)


@login_required
@require_GET
def loop_follow_ups(request: HttpRequest, loop_id: int, position: int) -> HttpResponse:
    """The design round's follow-ups released since the page's last fetch (`?after=N`)."""
    loop = _loop_or_404(request, loop_id)
    round_ = get_object_or_404(loop.rounds, position=position)
    after = after_count(request.GET.get("after"))
    state = selectors.design_round_follow_ups(request.user, round_.pk, timezone.now(), after)
    if state is None:
        raise Http404("this round has no follow-ups")
    context = state | _follow_ups_urls(loop, round_) | {"feedback_later": True}
    return render(request, "design/_follow_ups.html", context)


@login_required
@require_POST
def loop_follow_up_answer(
    request: HttpRequest, loop_id: int, position: int, follow_up_id: str
) -> HttpResponse:
    """Grade one follow-up's answer (once); htmx gets that item back, a plain form the round."""
    loop = _loop_or_404(request, loop_id)
    round_ = get_object_or_404(loop.rounds, position=position)
    text = request.POST.get("text", "")
    status, error = 200, ""
    try:
        services.design_follow_up_answer(
            user=request.user, round_id=round_.pk, follow_up_id=follow_up_id, text=text
        )
    except (services.LoopError, FollowUpNotDue) as refused:
        return HttpResponse(str(refused), status=409, content_type="text/plain")
    except AnswerInvalid as invalid:
        status, error = 400, "; ".join(invalid.errors.values())
    if request.headers.get("HX-Request") != "true" and status == 200:
        return redirect("loop-round", loop_id=loop.pk, position=position)
    state = selectors.design_round_follow_ups(request.user, round_.pk, timezone.now(), 0)
    item = next(v for v in state["follow_ups"] if v.follow_up.id == follow_up_id)
    context = {"item": item, "error": error, "value": text, "feedback_later": True}
    context |= _follow_ups_urls(loop, round_)
    return render(request, "design/_follow_up.html", context, status=status)


@login_required
@require_POST
def loop_finish(request: HttpRequest, loop_id: int) -> HttpResponse:
    try:
        services.loop_finish(user=request.user, loop_id=loop_id)
    except services.LoopNotYours as error:
        raise Http404(str(error)) from error
    except services.LoopError as error:
        return HttpResponse(str(error), status=409, content_type="text/plain")
    return redirect("loop-scorecard", loop_id=loop_id)


@login_required
@require_GET
def loop_scorecard(request: HttpRequest, loop_id: int) -> HttpResponse:
    loop = _loop_or_404(request, loop_id)
    if loop.status != LoopStatus.FINISHED:
        return redirect("loop-detail", loop_id=loop.pk)
    card = loop.scorecard
    context = {
        "loop": loop,
        "card": card,
        "charts": scorecard_charts(loop),
        "concept_rounds": [
            {"round": loop_round, "items": _concept_items(loop_round)}
            for loop_round in loop.rounds.filter(kind=RoundKind.CONCEPTS)
        ],
        "design_rounds": [
            entry | {"numeric": [_with_derivation(n) for n in entry["numeric"]]}
            for entry in card.get("rounds", [])
            if entry["kind"] == RoundKind.DESIGN and "numeric" in entry
        ],
        "study_plan": _study_plan_titled(card),
    }
    return render(request, "interview/scorecard.html", context)


@login_required
@require_GET
def progress(request: HttpRequest) -> HttpResponse:
    topics = selectors.topic_progress(request.user)
    return render(
        request,
        "interview/progress.html",
        {
            "topics": topics,
            "progress_chart": dashboard_views.progress_chart(topics),
            "loop_scores": [
                {"when": loop.finished_at.strftime("%Y-%m-%d %H:%M"), "score": loop.overall_score}
                for loop in selectors.loops_of(request.user)
                .filter(status=LoopStatus.FINISHED)
                .order_by("finished_at")
            ],
            "loops": selectors.loops_of(request.user).filter(status=LoopStatus.FINISHED),
        },
    )


# ---------------------------------------------------------------- review


@login_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest) -> HttpResponse:
    """The next card: answer it, see the graded answer, then rate your recall (review_rate)."""
    if request.method == "POST":
        try:
            card, attempt = services.review_answer(
                user=request.user,
                card_id=whole_number(request.POST.get("card"), "card"),
                data=request.POST,
                token=request.POST.get("token", ""),
            )
        except ReviewCard.DoesNotExist as error:
            raise Http404("no such review card") from error
        except ResponseInvalid as error:
            messages.error(request, str(error))
            return redirect("review")
        suggested = services.review_suggested_rating(card, attempt)
        return render(
            request,
            "interview/review.html",
            _review_context(request.user, card)
            | {
                "q": question_view_model(card.question, attempt.params, attempt),
                "ratings": _rating_buttons(card, suggested),
                "suggested": suggested,
            },
        )
    card = selectors.reviews_due(request.user).first()
    context = _review_context(request.user, card)
    if card is None:
        context["next_due"] = selectors.reviews_next_due(request.user)
    else:
        draw = services.practice_draw(card.question)
        context |= {
            "q": question_view_model(card.question, draw.params, option_order=draw.option_order),
            "token": draw.token,
        }
    return render(request, "interview/review.html", context)


def _review_context(user, card: ReviewCard | None) -> dict[str, Any]:
    return {
        "card": card,
        "point": _point_text(card) if card else "",
        "due_count": selectors.reviews_due_count(user),
    }


def _rating_buttons(card: ReviewCard, suggested: int) -> list[dict[str, Any]]:
    """Again, Hard, Good, Easy, each with when the card would come back after it; the grade's
    pick is marked as the default."""
    intervals = services.review_intervals(card, timezone.now())
    return [
        {
            "value": rating,
            "label": label,
            "after": _interval_text(intervals[rating]),
            "suggested": rating == suggested,
        }
        for rating, label in ReviewRating.choices
    ]


def _interval_text(interval) -> str:
    minutes = max(1, round(interval.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{round(minutes / 60)} h"
    days = round(minutes / (24 * 60))
    return f"{days} day{'s' if days != 1 else ''}"


@login_required
@require_POST
def review_rate(request: HttpRequest) -> HttpResponse:
    """Schedule the card from the person's rating; the grader's suggestion is logged beside it."""
    suggested = request.POST.get("suggested") or None
    try:
        card = services.review_rate(
            user=request.user,
            card_id=whole_number(request.POST.get("card"), "card"),
            rating=whole_number(request.POST.get("rating"), "rating"),
            suggested=whole_number(suggested, "suggested") if suggested else None,
        )
    except ReviewCard.DoesNotExist as error:
        raise Http404("no such review card") from error
    except ValueError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    messages.success(
        request,
        f"Rated {card.logs.first().get_rating_display()}: back {card.due:%Y-%m-%d %H:%M} UTC.",
    )
    return redirect("review")


@login_required
@require_POST
def review_add(request: HttpRequest) -> HttpResponse:
    """Add your own card for a question, or one of its rubric points, from any page showing it."""
    question = _published_or_404(request.POST.get("question", ""))
    try:
        services.review_card_add(
            user=request.user, question=question, point_id=request.POST.get("point", "")
        )
    except ValueError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    messages.success(request, "Added to your review queue.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("review")
    return redirect(back)


def _point_text(card: ReviewCard) -> str:
    for point in card.question.spec.get("rubric", {}).get("points", []):
        if point["id"] == card.point_id:
            return point["text"]
    return ""
