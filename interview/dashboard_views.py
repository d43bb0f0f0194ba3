"""A person's own pages: the dashboard (what to do next) and the profile (history, API tokens)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from grader.access import api_token_create, api_token_revoke
from grader.selectors import api_tokens_of, submissions_of
from interview import selectors
from interview.forms import LoopStartForm

# How many recent submissions and loops the dashboard lists; the profile has the rest.
DASHBOARD_RECENT = 5
# How much history the profile lists.
PROFILE_HISTORY = 100


def progress_chart(topics: list[dict]) -> dict:
    """Share correct per topic per ISO week, on one shared week axis (gaps where none)."""
    weeks = sorted({week["week"] for topic in topics for week in topic["weeks"]})
    return {
        "weeks": weeks,
        "topics": [
            {
                "topic": topic["topic"],
                "overall": round(topic["share"] * 100, 1),
                "share": [
                    next(
                        (round(w["share"] * 100, 1) for w in topic["weeks"] if w["week"] == week),
                        None,
                    )
                    for week in weeks
                ],
            }
            for topic in topics
        ],
    }


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return dashboard_page(request)


def dashboard_page(request: HttpRequest) -> HttpResponse:
    """What to do next: reviews due, a mock interview, progress, recent work (/ and /dashboard/)."""
    topics = selectors.topic_progress(request.user)
    return render(
        request,
        "profile/dashboard.html",
        {
            "due_count": selectors.reviews_due_count(request.user),
            "active_loop": selectors.loop_active_of(request.user),
            "loops": selectors.loops_of(request.user)[:DASHBOARD_RECENT],
            "submissions": submissions_of(request.user, limit=DASHBOARD_RECENT),
            "topics": topics,
            "progress_chart": progress_chart(topics),
            "loop_form": LoopStartForm(),
        },
    )


@login_required
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "profile/profile.html",
        {
            "submissions": submissions_of(request.user, limit=PROFILE_HISTORY),
            "loops": selectors.loops_of(request.user)[:PROFILE_HISTORY],
            "tokens": api_tokens_of(request.user),
            "new_token": request.session.pop("new_api_token", None),
        },
    )


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()[:100]
    if not name:
        messages.error(request, "Give the token a name, so you can tell it apart later.")
        return redirect("profile")
    token, raw = api_token_create(request.user, name)
    # Shown once, on the next page, then forgotten: only its hash is stored.
    request.session["new_api_token"] = {"name": token.name, "raw": raw}
    return redirect("profile")


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if api_token_revoke(request.user, token_id):
        messages.success(request, "Token revoked: it no longer works.")
    else:
        messages.error(request, "No such active token.")
    return redirect("profile")
