"""Design pages: the capacity calculator and a design round practised on its own.

Thin views: parse input, call `interview.design.calculator` or `interview.design.practice`,
render. A practice attempt lives in the server-side session (one per prompt), so the server,
not the browser, holds the clock that releases follow-ups.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from grader.markdown_render import prose
from interview import selectors, services
from interview.design import DesignPrompt
from interview.design import render as design_render
from interview.design.calculator import Calculation
from interview.design.forms import DEFAULTS, CalculatorForm
from interview.design.practice import (
    AnswerInvalid,
    FollowUpNotDue,
    after_count,
    answer_fields,
    attempt_grade,
    follow_up_grade,
    follow_ups_due,
    follow_ups_state,
)
from interview.design_bank import design_prompt_at

GB = 10**9


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# ---------------------------------------------------------------- calculator


def _chart_data(calc: Calculation) -> dict[str, Any]:
    return {
        "batches": [p.batch for p in calc.sweep],
        "predicted": [round(p.output_tokens_per_s, 1) for p in calc.sweep],
        "roofline": [round(p.roofline_tokens_per_s, 1) for p in calc.sweep],
        "max_batch": calc.estimate.max_concurrent_sequences,
    }


def _memory_rows(calc: Calculation) -> list[dict[str, Any]]:
    total = sum(s.bytes_per_gpu for s in calc.memory)
    return [
        {"label": s.label, "gb": s.bytes_per_gpu / GB, "share": s.bytes_per_gpu / total * 100}
        for s in calc.memory
    ]


@require_GET
def calculator(request: HttpRequest) -> HttpResponse:
    """The form and, for valid input, the estimate; htmx asks for the result fragment only."""
    form = CalculatorForm({k: str(v) for k, v in DEFAULTS.items()} | request.GET.dict())
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        calc = form.result()
        context |= {
            "calc": calc,
            "e": calc.estimate,
            "weights_gb": calc.estimate.weight_bytes / GB,
            "weights_per_gpu_gb": calc.estimate.weight_bytes_per_gpu / GB,
            "memory_rows": _memory_rows(calc),
            "chart": _chart_data(calc),
        }
    template = "design/_calculator_result.html" if _is_htmx(request) else "design/calculator.html"
    return render(request, template, context, status=200 if form.is_valid() else 400)


# ---------------------------------------------------------------- practice


def _prompt_or_404(prompt_id: str) -> DesignPrompt:
    prompt = selectors.design_prompt_published(prompt_id)
    if prompt is None:
        raise Http404("no such design prompt")
    return prompt


def _session_key(prompt: DesignPrompt) -> str:
    return f"design-attempt:{prompt.id}"


def _attempt(request: HttpRequest, prompt_id: str) -> tuple[DesignPrompt, dict[str, Any]]:
    """This session's attempt at a published prompt, started now if there is none, and the
    prompt as it was when the attempt was drawn (its version: an author's edit since changes
    nothing the attempt is answered or graded against)."""
    current = _prompt_or_404(prompt_id)
    key = _session_key(current)
    if key not in request.session:
        request.session[key] = services.design_practice_start(prompt_id, timezone.now())
    attempt = request.session[key]
    version = selectors.design_version_of(prompt_id, attempt.get("version_id"))
    return (design_prompt_at(version) if version else current), attempt


def _save(request: HttpRequest, prompt: DesignPrompt, attempt: dict[str, Any]) -> None:
    request.session[_session_key(prompt)] = attempt
    request.session.modified = True


# The standalone page asks for follow-ups every few seconds; a loop's round has them pushed.
POLL_TRIGGER = "every 5s"


def _follow_ups_context(
    prompt: DesignPrompt, attempt: dict[str, Any], after: int = 0
) -> dict[str, Any]:
    """Released follow-ups from index `after` on, and whether the page should keep polling."""
    return follow_ups_state(prompt, attempt, timezone.now(), after) | {
        "follow_ups_url": reverse("design-follow-ups", args=[prompt.id]),
        "follow_up_trigger": POLL_TRIGGER,
    }


@require_GET
def design_index(request: HttpRequest) -> HttpResponse:
    return render(request, "design/index.html", {"prompts": selectors.design_prompts_published()})


@login_required
@require_http_methods(["GET", "POST"])
def practice(request: HttpRequest, prompt_id: str) -> HttpResponse:
    """GET shows the round with this attempt's numbers; POST grades the answer once."""
    prompt, attempt = _attempt(request, prompt_id)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST" and attempt["result"] is None:
        try:
            attempt["result"] = attempt_grade(prompt, attempt, request.POST, timezone.now())
            _save(request, prompt, attempt)
        except AnswerInvalid as error:
            errors, status = error.errors, 400
    params = attempt["params"]
    context = {
        "attempt": attempt,
        "result": attempt["result"],
        "statement": prose(design_render(prompt.prompt, params)),
        "model_answer": prose(prompt.model_answer),
        "numeric_results": [
            n | {"derivation_html": prose(n["derivation"])}
            for n in (attempt["result"] or {}).get("numeric", [])
        ],
        "errors": errors,
        "answer_url": reverse("design-practice", args=[prompt.id]),
    }
    context |= answer_fields(prompt, params, request.POST, errors)
    context |= _follow_ups_context(prompt, attempt)
    return render(request, "design/practice.html", context, status=status)


@login_required
@require_POST
def practice_new(request: HttpRequest, prompt_id: str) -> HttpResponse:
    """Throw the attempt away and draw fresh numbers."""
    prompt = _prompt_or_404(prompt_id)
    request.session.pop(_session_key(prompt), None)
    return redirect("design-practice", prompt_id=prompt.id)


@login_required
@require_GET
def follow_ups(request: HttpRequest, prompt_id: str) -> HttpResponse:
    """Follow-ups released since the page's last poll (`?after=N`), then a new poller."""
    prompt, attempt = _attempt(request, prompt_id)
    context = _follow_ups_context(prompt, attempt, after_count(request.GET.get("after")))
    return render(request, "design/_follow_ups.html", context)


@login_required
@require_POST
def follow_up_answer(request: HttpRequest, prompt_id: str, follow_up_id: str) -> HttpResponse:
    """Grade one follow-up's answer against its own rubric (once); htmx gets that item back."""
    prompt, attempt = _attempt(request, prompt_id)
    status, error = 200, ""
    if follow_up_id not in attempt["follow_ups"]:
        try:
            attempt["follow_ups"][follow_up_id] = follow_up_grade(
                prompt, attempt, follow_up_id, request.POST.get("text", ""), timezone.now()
            )
            _save(request, prompt, attempt)
        except FollowUpNotDue as refused:
            return HttpResponse(str(refused), status=409, content_type="text/plain")
        except AnswerInvalid as invalid:
            status, error = 400, "; ".join(invalid.errors.values())
    if not _is_htmx(request) and status == 200:
        return redirect("design-practice", prompt_id=prompt.id)
    item = next(
        v for v in follow_ups_due(prompt, attempt, timezone.now()) if v.follow_up.id == follow_up_id
    )
    context = {
        "prompt": prompt,
        "item": item,
        "error": error,
        "value": request.POST.get("text", ""),
        "follow_ups_url": reverse("design-follow-ups", args=[prompt.id]),
    }
    return render(request, "design/_follow_up.html", context, status=status)
