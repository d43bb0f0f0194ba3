"""Engine-lab experiments: the settings a person chose and what the engine did with them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class LabRun(models.Model):
    """One experiment, run by a Celery task on a worker; results are per batching mode."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_runs"
    )
    settings = models.JSONField(help_text="lab.runner.LabSettings as a dict")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    results = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    worker_hostname = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "done", "failed"]),
                name="lab_run_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["done", "failed"]) | Q(finished_at__isnull=False),
                name="lab_run_finished_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"lab run {self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)
