"""Versions of authored content: bank questions and coding problems keep every saved state.

Each kind of content gives a *snapshot* (a JSON mapping of everything an author edits); a
version is recorded whenever the snapshot's hash differs from the latest version's, by the
admin on save (with its author), by the bank loader (no author) and, lazily, when something is
answered against content no version holds yet. It lives in the grader, the lowest Django app,
so the interview's questions and the grader's problems share one table.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml
from django.db import IntegrityError, models, transaction

from grader.models import ContentVersion


def content_hash(snapshot: Mapping[str, Any]) -> str:
    """A stable SHA-256 of a snapshot: the same content hashes the same, key order aside."""
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def versions_of(obj: models.Model) -> models.QuerySet[ContentVersion]:
    """Every version of ``obj``, newest first."""
    return ContentVersion.objects.filter(model=obj._meta.label_lower, object_id=obj.pk).order_by(
        "-number"
    )


def version_record(
    obj: models.Model, snapshot: Mapping[str, Any], author=None, note: str = ""
) -> ContentVersion:
    """The version holding ``snapshot``: the latest one when it already does, else a new one.

    Two writers racing for the same number: the loser retries once against the winner's row.
    """
    digest = content_hash(snapshot)
    for _ in range(2):
        latest = versions_of(obj).first()
        if latest is not None and latest.content_hash == digest:
            return latest
        try:
            with transaction.atomic():
                return ContentVersion.objects.create(
                    model=obj._meta.label_lower,
                    object_id=obj.pk,
                    number=latest.number + 1 if latest else 1,
                    snapshot=dict(snapshot),
                    content_hash=digest,
                    author=author,
                    note=note[:200],
                )
        except IntegrityError:
            continue
    raise RuntimeError(f"could not record a version of {obj!r}")


class _TextDumper(yaml.SafeDumper):
    pass


def _text_representer(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_TextDumper.add_representer(str, _text_representer)


def yaml_dump(document: Mapping[str, Any]) -> str:
    """YAML as authors write it: keys in their order, multi-line text (code too) as blocks."""
    return yaml.dump(document, Dumper=_TextDumper, sort_keys=False, allow_unicode=True, width=100)


def version_diff(older: ContentVersion | None, newer: ContentVersion) -> list[str]:
    """A unified diff, line by line, of two versions' snapshots as YAML (``older`` None: all
    of ``newer`` is added)."""
    before = yaml_dump(older.snapshot).splitlines() if older else []
    after = yaml_dump(newer.snapshot).splitlines()
    return list(
        difflib.unified_diff(
            before,
            after,
            fromfile=f"v{older.number}" if older else "(nothing)",
            tofile=f"v{newer.number}",
            lineterm="",
        )
    )
