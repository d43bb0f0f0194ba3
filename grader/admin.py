from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from grader.authoring import publish_refusal
from grader.bank import CONTENT_FIELDS, problem_apply, problem_content_errors, problem_snapshot
from grader.markdown_render import markdown_html
from grader.models import (
    ContentVersion,
    Problem,
    ProblemValidation,
    Submission,
    SubmissionEvent,
    TestResult,
)
from grader.selectors import problem_publish_blocker, problem_validation_status
from grader.services import problem_regrade, problem_validate, submission_abort
from grader.versions import content_hash, version_diff, version_record, versions_of


def snapshot_content(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without its published flag: what an edit changes."""
    return {k: v for k, v in snapshot.items() if k != "published"}


class VersionedAdmin(admin.ModelAdmin):
    """An admin for authored content: every save records a version (with its author), a
    history page diffs the versions and rolls back to one, and the Published box is refused
    inline unless the user may publish (grader.authoring) and the content passes its checks.

    Subclasses say how a row reads and writes as a snapshot, and what blocks publishing."""

    def snapshot(self, obj) -> dict[str, Any]:
        raise NotImplementedError

    def snapshot_apply(self, obj, snapshot: dict[str, Any]) -> None:
        raise NotImplementedError

    def form_snapshot(self, form: forms.ModelForm) -> dict[str, Any]:
        """The snapshot a valid form would save (published included)."""
        raise NotImplementedError

    def content_blocker(self, obj, snapshot: dict[str, Any]) -> str | None:
        """Why this content may not be published, whoever asks (None: nothing)."""
        raise NotImplementedError

    def publish_gate(self, request: HttpRequest, obj, snapshot: dict[str, Any]) -> str | None:
        """Why saving ``snapshot`` over ``obj`` (its stored state) may not publish it, or None.

        Nothing new goes live when it stays unpublished, or when it was published and its
        content is unchanged; otherwise the user must be a reviewer (a second person unless
        self-review is allowed) and the content must pass its checks."""
        if not snapshot.get("published", True):
            return None
        changed = obj.pk is None or content_hash(snapshot_content(snapshot)) != content_hash(
            snapshot_content(self.snapshot(obj))
        )
        if obj.pk is not None and obj.published and not changed:
            return None
        latest = versions_of(obj).first() if obj.pk else None
        author = request.user if changed else (latest.author if latest else None)
        return publish_refusal(request.user, author) or self.content_blocker(obj, snapshot)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class GatedForm(form):
            def clean(self):
                cleaned = super().clean()
                if not self.errors:
                    refusal = model_admin.publish_gate(
                        request, self.instance, model_admin.form_snapshot(self)
                    )
                    if refusal:
                        self.add_error("published", refusal)
                return cleaned

        return GatedForm

    def save_model(self, request, obj, form, change: bool) -> None:
        self.snapshot_apply(obj, self.form_snapshot(form))
        super().save_model(request, obj, form, change)
        version_record(obj, self.snapshot(obj), author=request.user, note="edited in the admin")

    @admin.display(description="History")
    def history_link(self, obj) -> str:
        if not obj.pk:
            return "Versions are kept from the first save."
        latest = versions_of(obj).first()
        url = reverse(f"admin:{self._url_prefix()}_versions", args=[obj.pk])
        number = f"v{latest.number}" if latest else "no version yet"
        return format_html('{} · <a href="{}">versions, diffs and rollback</a>', number, url)

    def _url_prefix(self) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}"

    def get_urls(self):
        prefix = self._url_prefix()
        return [
            path(
                "<int:object_id>/versions/",
                self.admin_site.admin_view(self.versions_view),
                name=f"{prefix}_versions",
            ),
            path(
                "<int:object_id>/versions/<int:number>/rollback/",
                self.admin_site.admin_view(require_POST(self.rollback_view)),
                name=f"{prefix}_rollback",
            ),
            *super().get_urls(),
        ]

    def versions_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Every version, newest first, each with its diff against the one before."""
        obj = get_object_or_404(self.model, pk=object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        versions = list(versions_of(obj).select_related("author"))
        rows = [
            {
                "version": v,
                "diff": version_diff(versions[i + 1] if i + 1 < len(versions) else None, v),
            }
            for i, v in enumerate(versions)
        ]
        context = self.admin_site.each_context(request) | {
            "title": f"Versions of {obj}",
            "opts": self.model._meta,
            "original": obj,
            "rows": rows,
            "current": content_hash(self.snapshot(obj)),
            "can_change": self.has_change_permission(request, obj),
            "rollback_url": f"admin:{self._url_prefix()}_rollback",
        }
        return TemplateResponse(request, "admin/content_versions.html", context)

    def rollback_view(self, request: HttpRequest, object_id: int, number: int) -> HttpResponse:
        """Restore a version's content as a new version; it stays published only where the
        publish gate lets this user publish it, else it is saved as a draft."""
        obj = get_object_or_404(self.model, pk=object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        version = get_object_or_404(versions_of(obj), number=number)
        snapshot = snapshot_content(version.snapshot) | {"published": obj.published}
        refusal = self.publish_gate(request, obj, snapshot)
        if refusal:
            snapshot["published"] = False
        self.snapshot_apply(obj, snapshot)
        try:
            with transaction.atomic():
                obj.save()
                version_record(
                    obj, self.snapshot(obj), author=request.user, note=f"rolled back to v{number}"
                )
        except IntegrityError:  # the old version's id or slug is another row's now
            self.message_user(
                request,
                f"Cannot roll back to v{number}: its id is taken by another row now",
                messages.ERROR,
            )
            return HttpResponseRedirect(
                reverse(f"admin:{self._url_prefix()}_versions", args=[obj.pk])
            )
        if refusal:
            self.message_user(
                request, f"Rolled back to v{number} as a draft: {refusal}", messages.WARNING
            )
        else:
            self.message_user(request, f"Rolled back to v{number}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse(f"admin:{self._url_prefix()}_versions", args=[obj.pk]))


# Rendering runs on every pause in typing; the longest shipped statement is a few thousand
# characters, and Markdown's cost grows with the text.
STATEMENT_PREVIEW_MAX_CHARS = 100_000

CODE_ATTRS = {"rows": 16, "cols": 100, "spellcheck": "false", "wrap": "off", "class": "code-field"}


class ProblemAdminForm(forms.ModelForm):
    """Every field an author edits of a problem; spec and checks as JSON."""

    class Meta:
        model = Problem
        fields = CONTENT_FIELDS
        # Code (and the wrong and cheating solutions in checks) as in an editor: monospace, no
        # wrapping (a wrapped Python line reads as two), Tab indents (static/css/admin_code.css,
        # static/js/admin_code.js).
        widgets = {
            name: forms.Textarea(attrs=CODE_ATTRS)
            for name in ("starter_code", "reference_code", "oracle_code", "inputs_code")
        } | {"checks": forms.Textarea(attrs=CODE_ATTRS | {"rows": 24})}

    def clean_checks(self) -> list[dict[str, str]]:
        checks = self.cleaned_data["checks"] or []
        if not isinstance(checks, list) or not all(
            isinstance(c, dict)
            and set(c) == {"name", "code"}
            and all(isinstance(v, str) for v in c.values())
            for c in checks
        ):
            raise forms.ValidationError('checks is a list of {"name": ..., "code": ...}')
        return checks


@admin.register(Problem)
class ProblemAdmin(VersionedAdmin):
    form = ProblemAdminForm
    list_display = ["slug", "title", "harness", "queue", "published", "updated_at"]
    list_filter = ["harness", "queue", "published"]
    search_fields = ["slug", "title"]
    actions = ["validate", "regrade"]
    readonly_fields = ["validation", "history_link", "statement_preview", "editorial_preview"]

    class Media:
        css = {"all": ["css/pygments.css", "css/admin_code.css"]}
        js = ["js/admin_code.js", "js/admin_markdown_preview.js"]

    def get_fields(self, request, obj=None):
        head = ["slug", "title", "published", "validation", "history_link"]
        fields = head + [name for name in CONTENT_FIELDS if name not in head]
        for field, preview in (("statement_md", "statement_preview"),
                               ("editorial_md", "editorial_preview")):  # fmt: skip
            at = fields.index(field) + 1
            fields = [*fields[:at], preview, *fields[at:]]
        return fields

    def _preview(self, source_field: str, markdown: str) -> str:
        """Saved Markdown rendered as the problem page renders it; static/js/
        admin_markdown_preview.js re-renders it through statement_preview_view as the author
        types in `source_field`."""
        return format_html(
            '<div data-preview-url="{}" data-source="id_{}" class="{}-preview">{}</div>',
            reverse("admin:grader_problem_statement_preview"),
            source_field,
            source_field.removesuffix("_md"),
            mark_safe(markdown_html(markdown)),
        )

    @admin.display(description="Statement preview (as the problem page shows it)")
    def statement_preview(self, problem: Problem) -> str:
        return self._preview("statement_md", problem.statement_md)

    @admin.display(description="Editorial preview (as it opens after an accepted submission)")
    def editorial_preview(self, problem: Problem) -> str:
        return self._preview("editorial_md", problem.editorial_md)

    def get_urls(self):
        return [
            path(
                "statement-preview/",
                self.admin_site.admin_view(require_POST(self.statement_preview_view)),
                name="grader_problem_statement_preview",
            ),
            *super().get_urls(),
        ]

    def statement_preview_view(self, request: HttpRequest) -> HttpResponse:
        """Markdown (a statement or an editorial) as the problem page renders it (raw HTML
        escaped), for the change form's live previews; staff who may add or change problems,
        CSRF-checked."""
        if not (self.has_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        text = request.POST.get("markdown", "")
        if len(text) > STATEMENT_PREVIEW_MAX_CHARS:
            return HttpResponse(
                f"Markdown of at most {STATEMENT_PREVIEW_MAX_CHARS:,} characters previews.",
                status=413,
                content_type="text/plain",
            )
        return HttpResponse(markdown_html(text), content_type="text/html; charset=utf-8")

    def snapshot(self, obj) -> dict[str, Any]:
        return problem_snapshot(obj)

    def snapshot_apply(self, obj, snapshot: dict[str, Any]) -> None:
        problem_apply(obj, snapshot)

    def form_snapshot(self, form: forms.ModelForm) -> dict[str, Any]:
        return {name: form.cleaned_data[name] for name in CONTENT_FIELDS}

    def content_blocker(self, obj, snapshot: dict[str, Any]) -> str | None:
        errors = problem_content_errors(snapshot | {"published": True})
        if errors:
            return "; ".join(errors)
        return problem_publish_blocker(obj, content_hash(snapshot_content(snapshot)))

    @admin.display(description="Validation (reference accepted, every check not)")
    def validation(self, problem: Problem) -> str:
        button = mark_safe(  # noqa: S308 (a constant)
            '<p><input type="submit" name="_validate" value="Save and validate on a worker"></p>'
        )
        latest = problem.validations.first() if problem.pk else None
        if latest is None:
            return format_html("{}<p>Never validated.</p>", button)
        status = problem_validation_status(latest)
        marks = {True: "✓", False: "✗", None: "…"}
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (marks[r.ok], r.name, f"must be {r.expect}", r.verdict or r.state, r.message)
                for r in status.rows
            ),
        )
        stale = "" if status.current else " (on content since edited: validate again)"
        return format_html(
            '{}<p class="validation-{}">Last run {}: <strong>{}</strong>{}</p>'
            "<table><thead><tr><th></th><th>solution</th><th>expected</th><th>verdict</th>"
            "<th>message</th></tr></thead><tbody>{}</tbody></table>",
            button,
            status.state,
            latest.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            status.state,
            stale,
            rows,
        )

    def response_change(self, request, obj):
        if "_validate" in request.POST:
            self._validate(request, obj)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_validate" in request.POST:
            self._validate(request, obj)
            return HttpResponseRedirect(reverse("admin:grader_problem_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def _validate(self, request, problem: Problem) -> None:
        validation = problem_validate(problem, request.user)
        self.message_user(
            request,
            f"Validation of {problem.slug} queued: {len(validation.runs)} solutions to grade; "
            "this page shows their verdicts as they come in (reload).",
            messages.INFO,
        )

    @admin.action(description="Validate on a live worker (reference and every check)")
    def validate(self, request, queryset) -> None:
        for problem in queryset:
            self._validate(request, problem)

    @admin.action(description="Re-grade every graded submission")
    def regrade(self, request, queryset) -> None:
        count = sum(problem_regrade(problem) for problem in queryset)
        self.message_user(request, f"{count} submissions re-queued", messages.SUCCESS)


@admin.register(ProblemValidation)
class ProblemValidationAdmin(admin.ModelAdmin):
    list_display = ["problem", "requested_by", "created_at"]
    readonly_fields = ["problem", "content_hash", "runs", "requested_by", "created_at"]


@admin.register(ContentVersion)
class ContentVersionAdmin(admin.ModelAdmin):
    list_display = ["model", "object_id", "number", "author", "note", "created_at"]
    list_filter = ["model"]
    readonly_fields = [f.name for f in ContentVersion._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TestResultInline(admin.TabularInline):
    model = TestResult
    extra = 0
    readonly_fields = ["index", "name", "verdict", "time_ms", "message", "details"]
    can_delete = False


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "user",
        "problem",
        "state",
        "verdict",
        "score",
        "needs_review",
        "created_at",
    ]
    list_filter = ["state", "verdict", "needs_review", "problem"]
    exclude = ["seed"]
    readonly_fields = [
        f.name for f in Submission._meta.fields if f.name not in {"seed", "needs_review", "id"}
    ]
    inlines = [TestResultInline]
    actions = ["abort", "mark_reviewed"]

    @admin.action(description="Abort")
    def abort(self, request, queryset) -> None:
        count = sum(submission_abort(s.pk) for s in queryset)
        self.message_user(request, f"{count} submissions aborted", messages.SUCCESS)

    @admin.action(description="Mark reviewed (show suspect results again)")
    def mark_reviewed(self, request, queryset) -> None:
        queryset.update(needs_review=False)


@admin.register(SubmissionEvent)
class SubmissionEventAdmin(admin.ModelAdmin):
    list_display = ["submission", "seq", "kind", "created_at"]
    readonly_fields = ["submission", "seq", "kind", "data", "created_at"]
