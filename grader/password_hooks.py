"""A changed password revokes the user's API tokens.

Whoever changes it (the reset link, the password-change page, the admin, ``changepassword``),
the tokens made with the old password stop working: a reset is what a person does after a
leak, and a token is as good as the password it came from."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from grader.access import api_tokens_revoke_all


def _remember_password_change(sender, instance, update_fields=None, **kwargs) -> None:
    # set_password() keeps the raw password until the next save; a hash upgraded at log-in
    # (same password, more iterations) does not, and keeps the tokens.
    instance._password_changed = instance.pk is not None and (
        getattr(instance, "_password", None) is not None
        and (update_fields is None or "password" in update_fields)
    )


def _revoke_tokens_after_password_change(sender, instance, **kwargs) -> None:
    if getattr(instance, "_password_changed", False):
        api_tokens_revoke_all(instance)
        instance._password_changed = False


def password_hooks_connect() -> None:
    """Connect the hooks to the user model (called once the apps are ready)."""
    user_model = get_user_model()
    pre_save.connect(_remember_password_change, sender=user_model, dispatch_uid="password-seen")
    post_save.connect(
        _revoke_tokens_after_password_change, sender=user_model, dispatch_uid="password-revokes"
    )
