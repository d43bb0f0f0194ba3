from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from grader.admin import VersionedAdmin, snapshot_content
from interview import services
from interview.authoring import Check, design_checks, question_checks
from interview.design_bank import design_apply, design_snapshot
from interview.forms import AdminLoginForm, DesignPromptAdminForm, QuestionAdminForm
from interview.grading import ResponseInvalid
from interview.models import Attempt, DesignPromptRow, Loop, LoopRound, Question, ReviewCard
from interview.question_bank import parameters_draw, question_apply, question_snapshot
from interview.views import question_view_model


class SpecYamlAdmin(VersionedAdmin):
    """Content edited as one YAML mapping (``spec_yaml``) beside its Published box."""

    def form_snapshot(self, form) -> dict[str, Any]:
        spec = dict(form.cleaned_data["spec_yaml"])
        return spec | ({} if form.cleaned_data["published"] else {"published": False})


@admin.register(Question)
class QuestionAdmin(SpecYamlAdmin):
    form = QuestionAdminForm
    list_display = ("bank_id", "topic", "level", "type", "published", "updated_at")
    list_filter = ("published", "topic", "level", "type")
    search_fields = ("bank_id", "prompt", "explanation")
    readonly_fields = ("checks", "history_link", "preview")
    fields = ("published", "spec_yaml", "checks", "history_link", "preview")

    def snapshot(self, question: Question) -> dict[str, Any]:
        return question_snapshot(question)

    def snapshot_apply(self, question: Question, snapshot: dict[str, Any]) -> None:
        question_apply(question, snapshot)

    def content_blocker(self, question: Question, snapshot: dict[str, Any]) -> str | None:
        return checks_refusal(question_checks(snapshot_content(snapshot)))

    @admin.display(description="Checks before publishing")
    def checks(self, question: Question) -> str:
        if not question.pk:
            return "Save to run the checks."
        results = question_checks(question.spec)
        if not results:
            return "None beyond the schema (it recomputes every answer from its formula)."
        return checks_list(results)

    @admin.display(description="Preview (as a candidate sees it, then the feedback)")
    def preview(self, question: Question) -> str:
        if not question.pk:
            return "Save to see a preview."
        params = parameters_draw(question.spec)
        html = render_to_string(
            "interview/_question_preview.html",
            {"q": question_view_model(question, params)},
        )
        url = reverse("admin:interview_question_try", args=[question.pk])
        return format_html(
            "<p><a href='{}'>Answer it as a candidate (fresh numbers, nothing recorded)</a></p>"
            "<div class='preview'>{}</div>",
            url,
            html,
        )

    def get_urls(self):
        return [
            path(
                "<int:object_id>/try/",
                self.admin_site.admin_view(self.try_view),
                name="interview_question_try",
            ),
            *super().get_urls(),
        ]

    def try_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The question on the candidate's practice page, drafts too: a fresh draw, graded on
        submit with the candidate's feedback, and nothing stored."""
        question = get_object_or_404(Question, pk=object_id)
        if not self.has_view_permission(request, question):
            raise PermissionDenied
        context = {
            "trying": True,
            "admin_url": reverse("admin:interview_question_change", args=[question.pk]),
        }
        if request.method == "POST":
            try:
                attempt = services.question_try(
                    question=question, data=request.POST, token=request.POST.get("token", "")
                )
            except ResponseInvalid as error:
                context["error"] = str(error)
            else:
                context["q"] = question_view_model(question, attempt.params, attempt)
                return render(request, "interview/practice_question.html", context)
        draw = services.practice_draw(question)
        context |= {
            "q": question_view_model(question, draw.params, option_order=draw.option_order),
            "token": draw.token,
        }
        return render(request, "interview/practice_question.html", context)


def checks_list(results: list[Check]) -> str:
    """Publish checks as the admin shows them: one line each, ✓ or ✗, what was found."""
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li>{} {}: {}</li>",
            (("✓" if c.passed else "✗", c.name, c.detail) for c in results),
        ),
    )


def checks_refusal(results: list[Check]) -> str | None:
    """Why content that got ``results`` may not be published (None: every check passed)."""
    failed = [c for c in results if not c.passed]
    if not failed:
        return None
    return "it fails its checks: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)


@admin.register(DesignPromptRow)
class DesignPromptAdmin(SpecYamlAdmin):
    """Design prompts, edited as YAML; published only once every section's and follow-up's
    model answer passes and a vacuous answer fails, and every stored numeric answer agrees
    with the capacity model (interview.authoring.design_checks)."""

    form = DesignPromptAdminForm
    list_display = ("prompt_id", "title", "level", "published", "updated_at")
    list_filter = ("published", "level")
    search_fields = ("prompt_id", "title")
    readonly_fields = ("checks", "history_link")
    fields = ("published", "spec_yaml", "checks", "history_link")

    def snapshot(self, row: DesignPromptRow) -> dict[str, Any]:
        return design_snapshot(row)

    def snapshot_apply(self, row: DesignPromptRow, snapshot: dict[str, Any]) -> None:
        design_apply(row, snapshot)

    def content_blocker(self, row: DesignPromptRow, snapshot: dict[str, Any]) -> str | None:
        return checks_refusal(design_checks(snapshot_content(snapshot)))

    @admin.display(description="Checks before publishing")
    def checks(self, row: DesignPromptRow) -> str:
        if not row.pk:
            return "Save to run the checks."
        return checks_list(design_checks(row.spec))


@admin.register(Loop)
class LoopAdmin(admin.ModelAdmin):
    list_display = ("pk", "user", "level", "length_min", "status", "rating", "started_at")
    list_filter = ("status", "level")


# The admin's log-in under the same brute-force limits as the site's.
admin.site.login_form = AdminLoginForm
admin.site.register(LoopRound)
admin.site.register(Attempt)
admin.site.register(ReviewCard)
