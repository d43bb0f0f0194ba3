"""Who may draft and who may publish authored content (bank questions, design prompts and coding problems).

Two groups, made after every migrate: "author" drafts, edits and validates (staff, not a
superuser); "reviewer" also publishes. Publishing what one wrote oneself needs
``settings.ALLOW_SELF_REVIEW`` (on by default: a one-person deployment); off, a second person
approves. A superuser counts as a reviewer.
"""

from __future__ import annotations

from django.conf import settings

AUTHOR_GROUP = "author"
REVIEWER_GROUP = "reviewer"
# What both groups may do in the admin; publishing is decided by publish_refusal, not a
# permission, because it depends on who wrote the content.
AUTHORING_PERMISSIONS = (
    ("interview", "add_question"),
    ("interview", "change_question"),
    ("interview", "view_question"),
    ("interview", "add_designpromptrow"),
    ("interview", "change_designpromptrow"),
    ("interview", "view_designpromptrow"),
    ("grader", "add_problem"),
    ("grader", "change_problem"),
    ("grader", "view_problem"),
    ("grader", "view_contentversion"),
    ("grader", "view_problemvalidation"),
)


def roles_ensure(**_kwargs) -> None:
    """Create the author and reviewer groups with their permissions (idempotent; connected
    to post_migrate, when the permissions exist)."""
    from django.contrib.auth.models import Group, Permission

    permissions = [
        Permission.objects.filter(content_type__app_label=app, codename=codename).first()
        for app, codename in AUTHORING_PERMISSIONS
    ]
    for name in (AUTHOR_GROUP, REVIEWER_GROUP):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*[p for p in permissions if p is not None])


def is_reviewer(user) -> bool:
    return user.is_superuser or user.groups.filter(name=REVIEWER_GROUP).exists()


def publish_refusal(user, content_author) -> str | None:
    """Why ``user`` may not publish content last written by ``content_author`` (None: may).

    ``content_author`` is None for content nobody wrote in the admin (the shipped bank)."""
    if not is_reviewer(user):
        return (
            f"publishing needs a member of the {REVIEWER_GROUP!r} group: uncheck Published "
            "to save a draft for review"
        )
    if content_author is not None and content_author == user and not settings.ALLOW_SELF_REVIEW:
        return (
            "a second reviewer must publish what you wrote (ALLOW_SELF_REVIEW is off): save it "
            "as a draft and ask another reviewer"
        )
    return None
