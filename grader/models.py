"""Problems, submissions, per-test results, progress events and worker heartbeats."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from grader.harnesses.contract import ProblemSpec, Verdict, problem_spec_from

VERDICT_CHOICES = [(v.value, v.label) for v in Verdict]


class Worker(models.Model):
    """A Celery worker process as last seen through its heartbeat."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    hardware = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.hostname


class Queue(models.TextChoices):
    """A problem's kind of worker. A GPU problem's submissions go to a card class's queue
    (``gpu.h100``: ``grader.selectors.card_classes_live``) or, correctness only, to ``cpu``."""

    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


# The prefix of a card class's queue: "gpu.h100" is consumed by workers on H100 cards.
CARD_QUEUE_PREFIX = "gpu."


def card_queue(card_class: str) -> str:
    """The queue of a card class (``h100`` -> ``gpu.h100``)."""
    return CARD_QUEUE_PREFIX + card_class


class Problem(models.Model):
    """A coding problem: a harness kind plus data (statement, code, limits, tests)."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    statement_md = models.TextField()
    editorial_md = models.TextField(
        blank=True,
        default="",
        help_text="The idea, the pitfalls, the complexity, what the reference does and where it "
        "could be faster; shown only to a user with an accepted submission. Needed to publish.",
    )
    harness = models.CharField(max_length=50)
    entry_point = models.CharField(max_length=100)
    queue = models.CharField(max_length=10, choices=Queue.choices, default=Queue.CPU)
    starter_code = models.TextField()
    reference_code = models.TextField()
    oracle_code = models.TextField(help_text="Trusted: expected outputs; never sent to a sandbox.")
    inputs_code = models.TextField(
        blank=True,
        default="",
        help_text="Public: how a kernel problem's inputs are drawn and called (both halves run it).",
    )
    spec = models.JSONField(help_text="limits, tolerance, tests, benchmark, speed_of_light")
    checks = models.JSONField(
        default=list,
        blank=True,
        help_text='Solutions that must not be accepted: [{"name": "wrong/x.py", "code": "..."}]; '
        "the validate action grades each of them and the reference.",
    )
    published = models.BooleanField(default=False)
    # The content hash of the folder this row was last loaded from; empty for a problem made
    # in the admin. A row whose content no longer hashes to it was edited by an author, and the
    # loader leaves it alone (see grader.bank.problems_load).
    shipped_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.slug

    def as_spec(self) -> ProblemSpec:
        return problem_spec_from(self)


class Submission(models.Model):
    """One solution of one problem by one user, from queued to graded (or aborted)."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        GRADED = "graded"
        ABORTED = "aborted"

    class Phase(models.TextChoices):
        NONE = "", "-"
        COMPILING = "compiling"
        TESTING = "testing"
        BENCHMARKING = "benchmarking"

    class Purpose(models.TextChoices):
        """Who waits for the verdict; sets the queue priority (a live interview first)."""

        INTERVIEW = "interview"
        PRACTICE = "practice"
        REGRADE = "regrade"
        VALIDATION = "validation"
        #: LeetCode's Run: the public examples (and inputs the candidate wrote) only, no
        #: reference, no timing, no score; never listed, ranked or counted as solved.
        RUN = "run"

    class Language(models.TextChoices):
        PYTHON = "python"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="submissions")
    # The problem's content as the candidate saw it (statement, tests, limits) when submitting.
    problem_version = models.ForeignKey(
        "ContentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    code = models.TextField()
    # A Run's inputs the candidate wrote (function problems), as sent: the worker checks them
    # again (``Harness.custom_cases``) and computes their expected outputs itself.
    run_inputs = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=20, choices=Language.choices, default="python")
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default="practice")
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    # The broker queue its job goes to: the problem's, or for a GPU problem the card class
    # the submitter chose (``gpu.h100``), or ``cpu`` for correctness only under the interpreter.
    queue = models.CharField(max_length=50, blank=True, default="")
    phase = models.CharField(max_length=20, choices=Phase.choices, default="", blank=True)
    verdict = models.CharField(max_length=20, choices=VERDICT_CHOICES, blank=True, default="")
    message = models.TextField(blank=True, default="")
    score = models.FloatField(null=True, blank=True)
    # Secret: every input of every call derives from it; never shown, kept for re-grading.
    seed = models.BigIntegerField()
    attempt = models.PositiveIntegerField(default=0)
    worker_hostname = models.CharField(max_length=255, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    hardware = models.JSONField(default=dict, blank=True)
    sandbox = models.CharField(max_length=20, blank=True, default="")
    harness_version = models.CharField(max_length=50, blank=True, default="")
    timing = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    needs_review = models.BooleanField(default=False)
    events_count = models.PositiveIntegerField(default=0)
    # A client's retry with the same key gets this submission back instead of a duplicate.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    # Whether its grading job is in the broker; each user has at most one there at a time, so
    # a user who floods the queue delays nobody else by more than one job.
    dispatched = models.BooleanField(default=False)
    # When the broker took its job: a job still unclaimed long after a worker sat idle was
    # lost by the broker and is sent again.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    graded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "graded", "aborted"]),
                name="submission_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["", *(v.value for v in Verdict)]),
                name="submission_verdict_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="graded") | (~Q(verdict="") & Q(graded_at__isnull=False)),
                name="submission_graded_has_verdict",
            ),
            models.CheckConstraint(
                condition=~Q(state="queued") | Q(verdict=""),
                name="submission_queued_has_no_verdict",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0), name="submission_score_nonneg"
            ),
            models.CheckConstraint(
                condition=~Q(purpose="run") | Q(score__isnull=True),
                name="submission_run_has_no_score",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="submission_idempotency_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"submission {self.pk} ({self.problem_id}, {self.state})"

    @property
    def speed_measured(self) -> bool:
        """Whether a worker timed this solution: a GPU problem checked on a CPU worker (or a
        grade that stopped before timing) has no speed, and no ratio is ever shown for it.
        (Rows graded before scores could be None stored 0 for "not timed".)"""
        return bool((self.timing or {}).get("candidate")) and bool(self.score)


class TestResult(models.Model):
    """One test of one graded submission, in the order the tests ran."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="tests")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    verdict = models.CharField(max_length=20, choices=VERDICT_CHOICES)
    time_ms = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "index"], name="test_result_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.verdict}"


class SubmissionEvent(models.Model):
    """A persisted progress step; ``seq`` counts from 1 per submission, so clients replay."""

    class Kind(models.TextChoices):
        QUEUED = "queued"
        STARTED = "started"
        SANDBOX_STARTED = "sandbox_started"
        TEST = "test"
        TEST_DONE = "test_done"
        BENCHMARKING = "benchmarking"
        REFERENCE = "reference"
        REQUEUED = "requeued"
        ABORTED = "aborted"
        DONE = "done"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=30, choices=Kind.choices)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "seq"], name="event_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.submission_id}#{self.seq} {self.kind}"

    def as_message(self) -> dict:
        return {
            "submission": self.submission_id,
            "seq": self.seq,
            "kind": self.kind,
            "data": self.data,
            "at": self.created_at.isoformat(),
        }


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 is stored, the token itself is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, help_text="The token's first characters, to tell tokens apart."
    )
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ContentVersion(models.Model):
    """One saved state of authored content (a bank question or a problem): a JSON snapshot of
    everything an author edits, numbered from 1 per object, with who saved it and when.

    Attempts, review cards and submissions point at the version they were answered against,
    so an edit never changes what a past answer was graded on."""

    # The content's model as "app_label.model_name" and its primary key. Not a content-type
    # foreign key: content-type ids are cached per process, and a label needs no cache.
    model = models.CharField(max_length=100)
    object_id = models.PositiveBigIntegerField()
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    content_hash = models.CharField(max_length=64)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "object_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "object_id", "number"], name="content_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.object_id} v{self.number}"


class ProblemValidation(models.Model):
    """A run of a problem's reference and every check solution through the real queue.

    ``runs`` lists ``{"name", "expect", "submission"}`` (expect: "accepted" for the reference,
    "rejected" for a check); it passes when every submission was graded as expected. It
    counts only for the content it was run on (``content_hash``)."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="validations")
    content_hash = models.CharField(max_length=64)
    runs = models.JSONField(default=list)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"validation {self.pk} of {self.problem_id}"
