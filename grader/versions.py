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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, models, transaction

from grader.models import ContentVersion
from grader.yaml_text import yaml_dump


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


@dataclass(frozen=True)
class LoadReport:
    """What a load of shipped content did: rows created, shipped rows updated, rows kept
    because an author edited them (or made them in the admin), shipped rows unpublished
    because they left the files."""

    created: int = 0
    updated: int = 0
    kept: list[str] = field(default_factory=list)
    unpublished: int = 0

    @property
    def loaded(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True)
class Shipped:
    """One item of shipped content: its key (the row's unique id), its position in the files
    and its snapshot as the row's snapshot function would write it."""

    key: str
    position: int
    snapshot: Mapping[str, Any]

    @classmethod
    def of(cls, key: str, position: int, document: Mapping[str, Any]) -> Shipped:
        """An item from its file's mapping, whose ``published: false`` (only when false) is
        kept as the rows' snapshots keep it."""
        snapshot = {k: v for k, v in document.items() if k != "published"}
        if document.get("published", True) is False:
            snapshot["published"] = False
        return cls(key, position, snapshot)


def shipped_sync(
    rows: Mapping[str, Any],
    shipped: Sequence[Shipped],
    *,
    new_row: Callable[[], Any],
    snapshot_of: Callable[[Any], dict[str, Any]],
    apply: Callable[[Any, Mapping[str, Any]], None],
    note: str,
) -> LoadReport:
    """Add new shipped items and update the shipped rows nobody edited since they were loaded.

    ``rows`` are the existing rows by key, locked by the caller's transaction; each has
    ``published``, ``position`` and ``shipped_hash`` (the hash of what the loader last
    wrote). A row is the loader's while its content hashes to ``shipped_hash``; a row an
    author edited, and a row made in the admin (no ``shipped_hash``), is kept as it is. A row
    with no ``shipped_hash`` whose content equals the shipped item's is adopted (rows loaded
    before the hash was kept). A shipped, unedited row that left the files is unpublished,
    never deleted. Each change records a version noted "<note>".
    """
    created = updated = unpublished = 0
    kept: list[str] = []
    for item in shipped:
        digest = content_hash(item.snapshot)
        row = rows.get(item.key)
        if row is None:
            row = new_row()
            row.position = item.position
            apply(row, item.snapshot)
            row.shipped_hash = digest
            row.save()
            version_record(row, item.snapshot, note=f"loaded from {note}")
            created += 1
            continue
        current = content_hash(snapshot_of(row))
        if current == digest:
            if row.shipped_hash != digest or row.position != item.position:
                row.shipped_hash, row.position = digest, item.position
                row.save(update_fields=["shipped_hash", "position"])
            continue
        if current != row.shipped_hash:
            kept.append(item.key)
            continue
        apply(row, item.snapshot)
        row.shipped_hash, row.position = digest, item.position
        row.save()
        version_record(row, item.snapshot, note=f"updated from {note}")
        updated += 1
    shipped_keys = {item.key for item in shipped}
    for key, row in rows.items():
        if key in shipped_keys or not row.shipped_hash or not row.published:
            continue
        if content_hash(snapshot_of(row)) == row.shipped_hash:
            row.published = False
            row.shipped_hash = content_hash(snapshot_of(row))
            row.save(update_fields=["published", "shipped_hash"])
            unpublished += 1
    return LoadReport(created=created, updated=updated, kept=kept, unpublished=unpublished)
