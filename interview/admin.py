from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.html import format_html

from interview.forms import AdminLoginForm, QuestionAdminForm
from interview.models import Attempt, Loop, LoopRound, Question, ReviewCard
from interview.question_bank import parameters_draw, question_fields
from interview.views import question_view_model


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    form = QuestionAdminForm
    list_display = ("bank_id", "topic", "level", "type", "published", "updated_at")
    list_filter = ("published", "topic", "level", "type")
    list_editable = ("published",)
    search_fields = ("bank_id", "prompt", "explanation")
    readonly_fields = ("preview",)
    fields = ("published", "spec_yaml", "preview")

    @admin.display(description="Preview (as a candidate sees it, then the feedback)")
    def preview(self, question: Question) -> str:
        if not question.pk:
            return "Save to see a preview."
        params = parameters_draw(question.spec)
        html = render_to_string(
            "interview/_question_preview.html",
            {"q": question_view_model(question, params)},
        )
        return format_html("<div class='preview'>{}</div>", html)

    def save_model(self, request, obj: Question, form, change: bool) -> None:
        spec = form.cleaned_data["spec_yaml"]
        for name, value in question_fields(spec).items():
            if name != "published":
                setattr(obj, name, value)
        obj.bank_id = spec["id"]
        obj.spec = spec
        super().save_model(request, obj, form, change)


@admin.register(Loop)
class LoopAdmin(admin.ModelAdmin):
    list_display = ("pk", "user", "level", "length_min", "status", "rating", "started_at")
    list_filter = ("status", "level")


# The admin's log-in under the same brute-force limits as the site's.
admin.site.login_form = AdminLoginForm
admin.site.register(LoopRound)
admin.site.register(Attempt)
admin.site.register(ReviewCard)
