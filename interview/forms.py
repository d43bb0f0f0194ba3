"""Forms: sign-up, log-in and password reset under limits, loop set-up, and the admin's YAML
editor for a question."""

from __future__ import annotations

import unicodedata

import yaml
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm

from grader import login_guard
from interview.design import design_prompt_validate
from interview.design_bank import design_spec_ordered
from interview.models import DesignPromptRow, Level, LoopLength, Question
from interview.question_bank import BankError, bank_dump, question_spec_full, question_validate

# Scripts that are written together, as Unicode's "highly restrictive" profile allows: Han with
# Japanese kana, with Korean Hangul, or with Bopomofo.
SCRIPTS_WRITTEN_TOGETHER = (
    {"CJK", "HIRAGANA", "KATAKANA"},
    {"CJK", "HANGUL"},
    {"CJK", "BOPOMOFO"},
)


def letter_scripts(text: str) -> set[str]:
    """The scripts (LATIN, CYRILLIC, GREEK, CJK, ...) of the letters in ``text``."""
    return {unicodedata.name(char, "UNKNOWN").split()[0] for char in text if char.isalpha()}


def scripts_mixed(text: str) -> set[str]:
    """The scripts of ``text`` when they are not one script or one set written together (a
    Cyrillic а in "alice"); empty otherwise."""
    scripts = letter_scripts(text)
    if len(scripts) <= 1 or any(scripts <= together for together in SCRIPTS_WRITTEN_TOGETHER):
        return set()
    return scripts


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For password resets.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def clean_username(self) -> str:
        username = super().clean_username()
        scripts = scripts_mixed(username)
        # Names are public on leaderboards: "аlice" with a Cyrillic а would pass for alice.
        if scripts:
            raise forms.ValidationError(
                f"Use letters of one script only; this name mixes {', '.join(sorted(scripts))}.",
                code="mixed_scripts",
            )
        return username


class LimitedLoginMixin:
    """A log-in form under the limits of :mod:`grader.login_guard`: a client that keeps
    failing is told to wait, whatever password it sends."""

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password"):
            return super().clean()
        try:
            attempt = login_guard.login_begin(self.request, username)
        except login_guard.LoginRefused as refused:
            raise forms.ValidationError(f"{str(refused).capitalize()}.", code="throttled") from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_guard.login_failed(attempt)
            raise
        login_guard.login_succeeded(attempt)
        return cleaned


class LoginForm(LimitedLoginMixin, AuthenticationForm):
    """The site's log-in."""


class AdminLoginForm(LimitedLoginMixin, AdminAuthenticationForm):
    """The admin's log-in."""


class LimitedPasswordResetForm(PasswordResetForm):
    """Password reset, with at most a few mails to one address an hour."""

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        try:
            login_guard.reset_mail_allow(email)
        except login_guard.ResetMailRefused as refused:
            raise forms.ValidationError(f"{str(refused).capitalize()}.", code="throttled") from None
        return email


class LoopStartForm(forms.Form):
    level = forms.ChoiceField(choices=Level.choices, initial=Level.MID)
    length_min = forms.TypedChoiceField(
        choices=LoopLength.choices, coerce=int, initial=LoopLength.MIN_45, label="Length"
    )


class QuestionAdminForm(forms.ModelForm):
    """Authors edit the question as its YAML mapping; the bank schema validates it."""

    spec_yaml = forms.CharField(
        label="Question (YAML)",
        # Kept as typed: stripping would drop a block scalar's last newline, an edit nobody made.
        strip=False,
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
        spec = _yaml_load(self.cleaned_data["spec_yaml"])
        try:
            question_validate(spec)
        except BankError as error:
            raise forms.ValidationError(str(error)) from error
        return _spec_free(spec, Question.objects.filter(bank_id=spec["id"]), self.instance)


def _spec_free(spec: dict, same_id, instance) -> dict:
    """``spec`` once it has no published key (the checkbox decides) and no other row
    (``same_id``, the rows with its id) holds its id."""
    if "published" in spec:
        raise forms.ValidationError("use the Published checkbox, not a published key")
    if same_id.exclude(pk=instance.pk).exists():
        raise forms.ValidationError(f"id {spec['id']!r} is already used")
    return spec


def _yaml_load(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise forms.ValidationError(f"not valid YAML: {error}") from error


class DesignPromptAdminForm(forms.ModelForm):
    """Authors edit a design prompt as its YAML mapping; its schema, its worked example and a
    render of every part on the example's parameters are checked as it is saved."""

    spec_yaml = forms.CharField(
        label="Design prompt (YAML)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 40, "cols": 100, "spellcheck": "false"}),
        help_text="The same mapping as interview/design/<name>.yaml. Give a worked example "
        "(example: {params: {...}, answers: {sub-question id: value}}) for the checks, and "
        "optionally a model_answer per section or follow-up (else the prompt's is used).",
    )

    class Meta:
        model = DesignPromptRow
        fields = ("published",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["spec_yaml"].initial = bank_dump(design_spec_ordered(self.instance.spec))

    def clean_spec_yaml(self) -> dict:
        spec = _yaml_load(self.cleaned_data["spec_yaml"])
        try:
            design_prompt_validate(spec)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error
        return _spec_free(spec, DesignPromptRow.objects.filter(prompt_id=spec["id"]), self.instance)
