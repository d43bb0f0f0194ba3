"""Forms: sign-up, loop set-up, and the admin's YAML editor for a question."""

from __future__ import annotations

import yaml
from django import forms
from django.contrib.auth.forms import UserCreationForm

from interview.models import Level, LoopLength, Question
from interview.question_bank import BankError, bank_dump, question_spec_full, question_validate


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For password resets.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class LoopStartForm(forms.Form):
    level = forms.ChoiceField(choices=Level.choices, initial=Level.MID)
    length_min = forms.TypedChoiceField(
        choices=LoopLength.choices, coerce=int, initial=LoopLength.MIN_45, label="Length"
    )


class QuestionAdminForm(forms.ModelForm):
    """Authors edit the question as its YAML mapping; the bank schema validates it."""

    spec_yaml = forms.CharField(
        label="Question (YAML)",
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "spellcheck": "false"}),
        help_text="The same mapping as in interview/bank/<topic>.yaml; the first topic is the "
        "file it is exported to.",
    )

    class Meta:
        model = Question
        fields = ("published",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            spec = {k: v for k, v in question_spec_full(self.instance).items() if k != "published"}
            self.fields["spec_yaml"].initial = bank_dump(spec)

    def clean_spec_yaml(self) -> dict:
        try:
            spec = yaml.safe_load(self.cleaned_data["spec_yaml"])
        except yaml.YAMLError as error:
            raise forms.ValidationError(f"not valid YAML: {error}") from error
        try:
            question_validate(spec)
        except BankError as error:
            raise forms.ValidationError(str(error)) from error
        if "published" in spec:
            raise forms.ValidationError("use the Published checkbox, not a published key")
        taken = Question.objects.filter(bank_id=spec["id"]).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"id {spec['id']!r} is already used")
        return spec
