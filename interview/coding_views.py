"""Coding pages: problems with an editor, live submissions, results, leaderboards."""

from __future__ import annotations

import json
import math
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from grader.access import LimitExceeded, submission_create_limited
from grader.markdown_render import markdown_html, python_html
from grader.models import Problem, Queue, Submission
from grader.selectors import (
    CORRECTNESS_ONLY_LABEL,
    CORRECTNESS_ONLY_QUEUE,
    card_classes_live,
    problem_editorial_for,
    problem_fit,
    problem_gpu_tier,
    problem_published_get,
    problem_queue_note,
    problems_published,
    queue_unserved_note,
    run_of,
    submission_get,
    submission_queue,
    submission_visible_to,
    submissions_of,
)
from grader.services import SubmissionRejected
from interview import coding_selectors


def _problem_or_404(slug: str) -> Problem:
    try:
        return problem_published_get(slug)
    except Problem.DoesNotExist:
        raise Http404("no such problem") from None


def _submission_or_404(request: HttpRequest, submission_id: int) -> Submission:
    if not submission_visible_to(submission_id, request.user):
        raise Http404("no such submission")
    submission = submission_get(submission_id)
    if submission.purpose == Submission.Purpose.RUN:
        raise Http404("a Run has no results page of a submission")
    return submission


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _create_from_form(request: HttpRequest, problem: Problem, **run) -> tuple[Submission, bool]:
    """The problem page's submission (or with ``run``'s purpose and inputs, its Run), made from
    the editor's form within the user's limits."""
    return submission_create_limited(
        user=request.user,
        problem=problem,
        code=request.POST.get("code", ""),
        idempotency_key=request.POST.get("idempotency_key", "")[:255],
        queue=request.POST.get("card", "")[:50],
        **run,
    )


def _limit_response(error: LimitExceeded) -> JsonResponse:
    """A limit's refusal for the page's script: the reason, the status, and when to retry."""
    response = JsonResponse({"error": str(error)}, status=error.status)
    if error.retry_after_s is not None:
        response["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return response


@require_GET
def problems_index(request: HttpRequest) -> HttpResponse:
    """Every published problem with its difficulty and expected time; public, as statements are."""
    signed_in = request.user.is_authenticated
    solved = coding_selectors.problems_solved_by(request.user) if signed_in else {}
    return render(
        request,
        "coding/problems.html",
        {
            "problems": [
                {
                    "problem": p,
                    "difficulty": difficulty,
                    "expected_min": minutes,
                    "solved": solved.get(p.slug),
                }
                for p in problems_published()
                for difficulty, minutes in [problem_fit(p)]
            ],
        },
    )


def run_button_context(problem: Problem) -> dict[str, Any]:
    """What the editor's Run button needs (coding/_editor.html): where to post, and the public
    examples it runs; the problem page and a mock loop's coding round both offer it."""
    return {
        "examples": [case["name"] for case in problem.as_spec().examples()],
        "run_url": reverse("problem-run", args=[problem.slug]),
    }


@require_GET
def problem_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The statement for anyone (as LeetCode shows it); the editor for people signed in."""
    problem = _problem_or_404(slug)
    signed_in = request.user.is_authenticated
    history = submissions_of(request.user, slug, limit=10) if signed_in else []
    gpu_tier = problem_gpu_tier(problem)
    difficulty, expected_min = problem_fit(problem)
    editorial = problem_editorial_for(request.user, problem)
    spec = problem.as_spec()
    return render(
        request,
        "coding/problem.html",
        {
            "problem": problem,
            "difficulty": difficulty,
            "expected_min": expected_min,
            "statement_html": markdown_html(problem.statement_md),
            # Only for a user with an accepted submission: otherwise not in the page at all.
            "editorial_html": markdown_html(editorial) if editorial else "",
            **run_button_context(problem),
            "custom_inputs": spec.custom_inputs,
            # The editor opens on the last submitted code; a newer browser draft replaces it.
            "initial_code": history[0].code if history else problem.starter_code,
            "history": history,
            "no_worker": problem_queue_note(problem) if signed_in else "",
            # A GPU problem's submitter picks a card class with a live worker, or correctness
            # only on a CPU worker (the last choice, the only one when no card is live).
            "cards": card_classes_live() if problem.queue == Queue.GPU or gpu_tier else [],
            # An engine problem's GPU tier: its throughput test on a live card, when chosen.
            "gpu_tier": gpu_tier,
            "correctness_only": {"queue": CORRECTNESS_ONLY_QUEUE, "label": CORRECTNESS_ONLY_LABEL},
        },
    )


@login_required
@require_POST
def problem_submit(request: HttpRequest, slug: str) -> HttpResponse:
    problem = _problem_or_404(slug)
    try:
        submission, _ = _create_from_form(request, problem)
    except LimitExceeded as error:
        if _wants_json(request):
            return _limit_response(error)
        messages.error(request, str(error))
        return redirect("problem", slug=slug)
    except SubmissionRejected as error:
        if _wants_json(request):
            return JsonResponse({"error": str(error)}, status=400)
        messages.error(request, str(error))
        return redirect("problem", slug=slug)
    url = reverse("submission", args=[submission.pk])
    if _wants_json(request):
        return JsonResponse(
            {
                "id": submission.pk,
                "url": url,
                "results_url": reverse("submission-results", args=[submission.pk]),
                "no_worker": queue_unserved_note(submission_queue(submission)),
            },
            status=201,
        )
    return redirect(url)


def _run_inputs(request: HttpRequest) -> list[dict]:
    """The page's one input of the candidate's own (JSON rows and a dtype), as the API takes
    them; ValueError when the text is not JSON."""
    text = request.POST.get("input", "").strip()
    if not text:
        return []
    try:
        values = json.loads(text)
    except ValueError as error:
        raise ValueError(f"inputs: your input is not JSON ({error})") from None
    return [{"values": values, "dtype": request.POST.get("input_dtype", "float64")[:20]}]


@login_required
@require_POST
def problem_run(request: HttpRequest, slug: str) -> HttpResponse:
    """Run: the editor's code on the public examples (and the candidate's own input), through
    the same limits and workers as a submission; answers JSON for problem.js."""
    problem = _problem_or_404(slug)
    try:
        run, _ = _create_from_form(
            request, problem, purpose=Submission.Purpose.RUN, run_inputs=_run_inputs(request)
        )
    except LimitExceeded as error:
        return _limit_response(error)
    except (SubmissionRejected, ValueError) as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse(
        {
            "id": run.pk,
            "results_url": reverse("run-results", args=[run.pk]),
            "no_worker": queue_unserved_note(submission_queue(run)),
        },
        status=201,
    )


@login_required
@require_GET
def run_results(request: HttpRequest, run_id: int) -> HttpResponse:
    """A Run's examples: what the problem page swaps in when it is done."""
    try:
        run = run_of(run_id, request.user)
    except Submission.DoesNotExist:
        raise Http404("no such run") from None
    return render(request, "coding/_run_results.html", {"run": run})


@login_required
@require_GET
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission = _submission_or_404(request, submission_id)
    results = coding_selectors.results_of(submission)
    return render(
        request,
        "coding/submission.html",
        {
            "submission": submission,
            "results": results,
            "charts": results.chart_data(),
            "code_html": python_html(submission.code),
            "no_worker": queue_unserved_note(submission_queue(submission))
            if submission.state == Submission.State.QUEUED
            else "",
        },
    )


@login_required
@require_GET
def submission_results(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The results section alone: what the live page swaps in when the verdict arrives."""
    submission = _submission_or_404(request, submission_id)
    results = coding_selectors.results_of(submission)
    return render(
        request,
        "coding/_results.html",
        {"submission": submission, "results": results, "charts": results.chart_data()},
    )


@require_GET
def leaderboards(request: HttpRequest) -> HttpResponse:
    hardware = request.GET.get("hardware") or None
    return render(
        request,
        "leaderboard/index.html",
        {
            "boards": coding_selectors.leaderboards(hardware=hardware),
            "hardware": hardware,
            "hardware_labels": coding_selectors.hardware_labels(),
            "problems": problems_published(),
        },
    )


@require_GET
def leaderboard_problem(request: HttpRequest, slug: str) -> HttpResponse:
    problem = _problem_or_404(slug)
    hardware = request.GET.get("hardware") or None
    return render(
        request,
        "leaderboard/problem.html",
        {
            "problem": problem,
            "boards": coding_selectors.leaderboards(problem, hardware),
            "hardware": hardware,
            "hardware_labels": coding_selectors.hardware_labels(),
        },
    )
