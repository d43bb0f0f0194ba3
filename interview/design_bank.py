"""System-design prompts in the database: loaded from interview/design/*.yaml under the same
rules as the question bank (nothing an author wrote is overwritten), read back as prompts.

The YAML files ship the prompts; once loaded, the database is the source of truth, and the
design pages and the loop's design round read its published rows. Shared rubric points
(``_points.yaml``, ``{use: point_id}``) stay in code: a row holds its references, expanded
when it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db import transaction

from grader.versions import content_hash, version_record
from interview.design import (
    DESIGN_DIR,
    SECTION_NAMES,
    DesignPrompt,
    design_files_read,
    design_prompt_validate,
)
from interview.models import DesignPromptRow
from interview.question_bank import LoadReport

# The order authors read a prompt's keys in (a JSON column may store them in its own).
KEY_ORDER = (
    "id", "title", "level", "minutes", "source", "prompt", "parameters", "numeric", "sections",
    "follow_ups", "model_answer", "example",
)  # fmt: skip


def design_spec_ordered(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A prompt mapping with its keys, and its sections, in the order its files write them."""
    rank = {key: i for i, key in enumerate(KEY_ORDER)}
    ordered = dict(sorted(spec.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    if isinstance(ordered.get("sections"), Mapping):
        sections = ordered["sections"]
        names = [n for n in SECTION_NAMES if n in sections] + [
            n for n in sections if n not in SECTION_NAMES
        ]
        ordered["sections"] = {name: sections[name] for name in names}
    return ordered


def design_snapshot(row: DesignPromptRow) -> dict[str, Any]:
    """Everything an author edits of a prompt: its YAML mapping, with ``published: false``
    when it is hidden (a version's snapshot, and what its hash covers)."""
    return dict(row.spec) | ({} if row.published else {"published": False})


def design_apply(row: DesignPromptRow, snapshot: Mapping[str, Any]) -> None:
    """Set a (possibly unsaved) row's fields from a snapshot (the inverse of design_snapshot)."""
    spec = {k: v for k, v in snapshot.items() if k != "published"}
    row.spec = spec
    row.prompt_id, row.title, row.level = spec["id"], spec["title"], spec["level"]
    row.published = snapshot.get("published", True) is not False


def design_prompts_load_report(directory: Path = DESIGN_DIR) -> LoadReport:
    """Add new prompts and update the shipped ones nobody edited since they were loaded.

    The rules of interview.question_bank.questions_load_report: a row is the loader's while
    its content hashes to ``shipped_hash``; an edited row and a row made in the admin are
    kept; a shipped, unedited prompt that left the files is unpublished, never deleted. Each
    change records a version. A file that fails validation raises ValueError naming it.
    """
    files = design_files_read(directory)
    for name, data in files:
        try:
            design_prompt_validate(data)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
    created = updated = unpublished = 0
    kept: list[str] = []
    with transaction.atomic():
        rows = {r.prompt_id: r for r in DesignPromptRow.objects.select_for_update()}
        for position, (_, data) in enumerate(files):
            snapshot = {k: v for k, v in data.items() if k != "published"}
            if data.get("published", True) is False:
                snapshot["published"] = False
            digest = content_hash(snapshot)
            row = rows.get(data["id"])
            if row is None:
                row = DesignPromptRow(position=position)
                design_apply(row, snapshot)
                row.shipped_hash = digest
                row.save()
                version_record(row, snapshot, note="loaded from the design files")
                created += 1
                continue
            current = content_hash(design_snapshot(row))
            if current == digest:
                if row.shipped_hash != digest or row.position != position:
                    row.shipped_hash, row.position = digest, position
                    row.save(update_fields=["shipped_hash", "position"])
                continue
            if current != row.shipped_hash:
                kept.append(row.prompt_id)
                continue
            design_apply(row, snapshot)
            row.shipped_hash, row.position = digest, position
            row.save()
            version_record(row, snapshot, note="updated from the design files")
            updated += 1
        shipped_ids = {data["id"] for _, data in files}
        for row in rows.values():
            if row.prompt_id in shipped_ids or not row.shipped_hash or not row.published:
                continue
            if content_hash(design_snapshot(row)) == row.shipped_hash:
                row.published = False
                row.shipped_hash = content_hash(design_snapshot(row))
                row.save(update_fields=["published", "shipped_hash"])
                unpublished += 1
    return LoadReport(created=created, updated=updated, kept=kept, unpublished=unpublished)


# Rows read back as prompts, by (pk, updated_at): a saved edit changes updated_at, so an
# entry is never stale; rebuilding a prompt expands and compiles its rubrics.
_BUILT: dict[tuple[int, Any], DesignPrompt] = {}
_BUILT_MAX = 256


def design_prompt_of(row: DesignPromptRow) -> DesignPrompt:
    """The prompt a row holds (validated when it was saved or loaded)."""
    key = (row.pk, row.updated_at)
    prompt = _BUILT.get(key)
    if prompt is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        prompt = _BUILT[key] = design_prompt_validate(row.spec)
    return prompt
