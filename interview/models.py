"""Interview data: the question bank, attempts, mock-interview loops and review cards."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Level(models.TextChoices):
    JUNIOR = "junior", "Junior"
    MID = "mid", "Mid"
    SENIOR = "senior", "Senior"
    STAFF = "staff", "Staff"


LEVEL_ORDER = [Level.JUNIOR, Level.MID, Level.SENIOR, Level.STAFF]


class QuestionType(models.TextChoices):
    SINGLE_CHOICE = "single_choice", "Single choice"
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    NUMERIC = "numeric", "Numeric"
    PARAMETRIC = "parametric", "Numeric with parameters"
    SHORT_ANSWER = "short_answer", "Short answer"


class Question(models.Model):
    """One bank question; ``spec`` is its YAML mapping, the other fields are indexed copies."""

    bank_id = models.SlugField(max_length=80, unique=True)
    topic = models.SlugField(max_length=60, db_index=True)
    topics = models.JSONField(default=list)
    level = models.CharField(max_length=10, choices=Level.choices, db_index=True)
    type = models.CharField(max_length=20, choices=QuestionType.choices)
    prompt = models.TextField()
    explanation = models.TextField()
    source_title = models.CharField(max_length=300)
    source_url = models.URLField(max_length=500)
    spec = models.JSONField()
    published = models.BooleanField(default=True, db_index=True)
    position = models.PositiveIntegerField(default=0)
    # The content hash of the YAML this row was last loaded from; empty for a question made in
    # the admin. A row whose content no longer hashes to it was edited by an author, and the
    # loader leaves it alone (see interview.question_bank.questions_load).
    shipped_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["topic", "position", "bank_id"]

    def __str__(self) -> str:
        return self.bank_id


class DesignPromptRow(models.Model):
    """One system-design round prompt; ``spec`` is its YAML mapping (interview/design/*.yaml),
    the other fields are indexed copies. The pages and the loop read published rows only."""

    prompt_id = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    level = models.CharField(max_length=10, choices=Level.choices, db_index=True)
    spec = models.JSONField()
    published = models.BooleanField(default=True, db_index=True)
    position = models.PositiveIntegerField(default=0)
    # As Question.shipped_hash: what the loader last wrote; an author's edit makes it stale and
    # the loader keeps the row (interview.design_bank.design_prompts_load_report).
    shipped_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "prompt_id"]
        verbose_name = "design prompt"

    def __str__(self) -> str:
        return self.prompt_id


class LoopStatus(models.TextChoices):
    ACTIVE = "active", "In progress"
    FINISHED = "finished", "Finished"


class LoopLength(models.IntegerChoices):
    MIN_30 = 30, "30 minutes"
    MIN_45 = 45, "45 minutes"
    MIN_60 = 60, "60 minutes"


class Loop(models.Model):
    """A mock interview: rounds in order, each with its own server-side deadline."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="loops"
    )
    level = models.CharField(max_length=10, choices=Level.choices)
    length_min = models.PositiveSmallIntegerField(choices=LoopLength.choices)
    status = models.CharField(max_length=10, choices=LoopStatus.choices, default=LoopStatus.ACTIVE)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    overall_score = models.FloatField(null=True, blank=True)
    scorecard = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="active", finished_at__isnull=True)
                | Q(status="finished", finished_at__isnull=False, rating__isnull=False),
                name="loop_finished_has_time_and_rating",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=4),
                name="loop_rating_1_to_4",
            ),
        ]

    def __str__(self) -> str:
        return f"loop {self.pk} ({self.user}, {self.level}, {self.length_min} min)"


class RoundKind(models.TextChoices):
    CONCEPTS = "concepts", "Concepts"
    CODING = "coding", "Coding"
    DESIGN = "design", "System design"


class LoopRound(models.Model):
    """One timed round; the deadline is set when the candidate opens it."""

    loop = models.ForeignKey(Loop, on_delete=models.CASCADE, related_name="rounds")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=RoundKind.choices)
    title = models.CharField(max_length=200)
    duration_s = models.PositiveIntegerField()
    started_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    problem_slug = models.SlugField(max_length=100, blank=True)
    design_id = models.SlugField(max_length=100, blank=True)
    design = models.JSONField(default=dict, blank=True)
    # A design round's prompt as it was drawn (its text, rubrics, parameters): the round is
    # answered and graded against it, whatever an author edits since.
    design_version = models.ForeignKey(
        "grader.ContentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    response = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    late = models.BooleanField(default=False)
    score = models.FloatField(null=True, blank=True)
    feedback = models.JSONField(default=dict, blank=True)
    # A design round's graded follow-up answers by follow-up id, each answered once.
    follow_ups = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["loop", "position"]
        constraints = [
            models.UniqueConstraint(fields=["loop", "position"], name="round_position_unique"),
            models.CheckConstraint(
                condition=Q(started_at__isnull=True, deadline__isnull=True)
                | Q(started_at__isnull=False, deadline__isnull=False),
                name="round_started_has_deadline",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.loop_id}.{self.position} {self.kind}"


class LoopItem(models.Model):
    """A concept question placed in a round, with the parameters drawn for it."""

    round = models.ForeignKey(LoopRound, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(default=dict, blank=True)
    # The choice options' shuffle drawn for this item (bank indices in shown order), kept so the
    # round page shows one order however often it is opened; empty for other question types.
    option_order = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["round", "position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "position"], name="item_position_unique"),
            models.UniqueConstraint(fields=["round", "question"], name="item_question_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.round} #{self.position}"


class Attempt(models.Model):
    """An answer to a question, in practice or inside a loop round, graded at once.

    A choice question's options are shuffled per attempt: ``option_order`` lists the bank
    indices in the order they were shown, ``response`` names the picked options by bank index,
    and ``feedback["choices"]`` keeps each option as shown (text, picked, correct).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts"
    )
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="attempts")
    # The question's content this answer was graded against (its text, options, rubric).
    question_version = models.ForeignKey(
        "grader.ContentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    loop_round = models.ForeignKey(
        LoopRound, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    params = models.JSONField(default=dict, blank=True)
    option_order = models.JSONField(default=list, blank=True)
    response = models.JSONField()
    score = models.FloatField()
    correct = models.BooleanField()
    late = models.BooleanField(default=False)
    feedback = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["loop_round", "question"],
                condition=Q(loop_round__isnull=False),
                name="attempt_once_per_round_question",
            ),
            models.CheckConstraint(
                condition=Q(score__gte=0, score__lte=1), name="attempt_score_0_to_1"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.pk} on {self.question_id} ({self.score:.2f})"


class CardOrigin(models.TextChoices):
    MISSED = "missed", "Missed"
    ADDED = "added", "Added by you"


class ReviewCard(models.Model):
    """An FSRS card for a question, or for one rubric point (``point_id``): made when the person
    missed it, or added by them from the question's page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_cards"
    )
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="review_cards")
    # The question's content when the card was made (the version that was missed or added).
    question_version = models.ForeignKey(
        "grader.ContentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    point_id = models.SlugField(max_length=80, blank=True, default="")
    origin = models.CharField(max_length=10, choices=CardOrigin.choices, default=CardOrigin.MISSED)
    fsrs = models.JSONField()
    due = models.DateTimeField(db_index=True)
    reviews = models.PositiveIntegerField(default=0)
    lapses = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "question", "point_id"], name="review_card_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"card {self.pk} due {self.due:%Y-%m-%d %H:%M}"


class ReviewRating(models.IntegerChoices):
    AGAIN = 1, "Again"
    HARD = 2, "Hard"
    GOOD = 3, "Good"
    EASY = 4, "Easy"


class ReviewLog(models.Model):
    """One review of a card: the rating given, the one the grader suggested, and when."""

    card = models.ForeignKey(ReviewCard, on_delete=models.CASCADE, related_name="logs")
    rating = models.PositiveSmallIntegerField(choices=ReviewRating.choices)
    # The machine's grade of the answer as a rating, when an answer was graded (the default the
    # person accepted or overrode); empty for a rating given without an answer.
    suggested = models.PositiveSmallIntegerField(
        choices=ReviewRating.choices, null=True, blank=True
    )
    reviewed_at = models.DateTimeField()
    due_after = models.DateTimeField()

    class Meta:
        ordering = ["-reviewed_at"]

    def __str__(self) -> str:
        return f"review of card {self.card_id}: {self.rating}"
