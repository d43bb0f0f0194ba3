from django.apps import AppConfig


class GraderConfig(AppConfig):
    name = "grader"
    verbose_name = "Grader"

    def ready(self) -> None:
        from grader import signals  # noqa: F401  (connects the worker heartbeat)
