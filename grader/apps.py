from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class GraderConfig(AppConfig):
    name = "grader"
    verbose_name = "Grader"

    def ready(self) -> None:
        from grader import signals  # noqa: F401  (connects the worker heartbeat)
        from grader.password_hooks import password_hooks_connect

        password_hooks_connect()

        from django.db.models.signals import post_migrate

        from grader.authoring import roles_ensure

        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="grader-roles")

        if not settings.DEBUG:
            from grader.harnesses.contract import SandboxKind
            from grader.sandbox import sandbox_kind

            if sandbox_kind() is not SandboxKind.BUBBLEWRAP:
                raise ImproperlyConfigured(
                    "bubblewrap (bwrap) is missing or cannot create namespaces here; with DEBUG "
                    "off InferPrep refuses to run candidate code unsandboxed. Install it "
                    "(Debian/Ubuntu: apt-get install bubblewrap) or run `make sandbox`."
                )
