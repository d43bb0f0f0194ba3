from django.db import models


class Worker(models.Model):
    """A Celery worker process as last seen through its heartbeat."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    hardware = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.hostname
