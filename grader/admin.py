from django.contrib import admin, messages

from grader.models import Problem, Submission, SubmissionEvent, TestResult
from grader.services import problem_regrade, submission_abort


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "harness", "queue", "published", "updated_at"]
    list_filter = ["harness", "queue", "published"]
    search_fields = ["slug", "title"]
    actions = ["regrade"]

    @admin.action(description="Re-grade every graded submission")
    def regrade(self, request, queryset) -> None:
        count = sum(problem_regrade(problem) for problem in queryset)
        self.message_user(request, f"{count} submissions re-queued", messages.SUCCESS)


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
