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

from grader.models import ContentVersion
from grader.versions import LoadReport, Shipped, content_hash, shipped_sync, version_record
from interview.design import (
    DESIGN_DIR,
    SECTION_NAMES,
    DesignPrompt,
    design_files_read,
    design_prompt_validate,
)
from interview.models import DesignPromptRow
from interview.question_bank import bank_dump

# The order authors read a prompt's keys in, at every level (a prompt, a numeric sub-question,
# a section, a follow-up, a rubric and its points, the worked example): a JSON column may
# store a mapping's keys in its own order. Other keys (parameter names) keep theirs.
KEY_ORDER = (
    "id", "use", "title", "level", "minutes", "source", "after_minutes", "question", "prompt",
    "parameters", "numeric", "sections", "follow_ups", "model_answer", "rubric", "example",
    "function", "args", "field", "scale", "unit", "tolerance", "derivation", "text", "keywords",
    "exemplars", "near_misses", "weight", "threshold", "penalty", "points", "misconceptions",
    "params", "answers", "range", "step", "choices",
)  # fmt: skip
_RANK = {key: i for i, key in enumerate(KEY_ORDER)}


def design_spec_ordered(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A prompt mapping with its keys, at every level, and its sections in the order its files
    write them."""
    ordered = _keys_ordered(spec)
    if isinstance(ordered.get("sections"), Mapping):
        sections = ordered["sections"]
        names = [n for n in SECTION_NAMES if n in sections] + [
            n for n in sections if n not in SECTION_NAMES
        ]
        ordered["sections"] = {name: sections[name] for name in names}
    return ordered


def _keys_ordered(value: Any) -> Any:
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: _RANK.get(kv[0], len(_RANK)))
        return {key: _keys_ordered(item) for key, item in items}
    if isinstance(value, list):
        return [_keys_ordered(item) for item in value]
    return value


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

    The question bank's rules (grader.versions.shipped_sync): an edited row and a row made
    in the admin are kept; a shipped, unedited prompt that left the files is unpublished,
    never deleted; each change records a version. A file that fails validation raises
    ValueError naming it.
    """
    return design_prompts_sync(design_files_checked(directory))


def design_files_checked(directory: Path = DESIGN_DIR) -> list[tuple[str, dict[str, Any]]]:
    """The design files as (name, data), each validated; a failing file raises ValueError
    naming it."""
    files = design_files_read(directory)
    for name, data in files:
        try:
            design_prompt_validate(data)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
    return files


def design_prompts_sync(files: list[tuple[str, dict[str, Any]]]) -> LoadReport:
    """Bring the rows in line with checked files (:func:`design_files_checked`), by the rules
    of :func:`design_prompts_load_report`."""
    shipped = [Shipped.of(data["id"], position, data) for position, (_, data) in enumerate(files)]
    with transaction.atomic():
        return shipped_sync(
            {r.prompt_id: r for r in DesignPromptRow.objects.select_for_update()},
            shipped,
            new_row=DesignPromptRow,
            snapshot_of=design_snapshot,
            apply=design_apply,
            note="the design files",
        )


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


def design_version_current(row: DesignPromptRow) -> ContentVersion:
    """The version holding the prompt's content now (recorded if no version holds it yet)."""
    return version_record(row, design_snapshot(row))


# Prompts built from versions, by version pk: a version never changes once written.
_BUILT_VERSIONS: dict[int, DesignPrompt] = {}


def design_prompt_at(version: ContentVersion) -> DesignPrompt:
    """The prompt a version of a row holds: what a round drawn from it is answered against."""
    prompt = _BUILT_VERSIONS.get(version.pk)
    if prompt is None:
        if len(_BUILT_VERSIONS) >= _BUILT_MAX:
            _BUILT_VERSIONS.clear()
        spec = {k: v for k, v in version.snapshot.items() if k != "published"}
        prompt = _BUILT_VERSIONS[version.pk] = design_prompt_validate(spec)
    return prompt


def design_export(directory: Path) -> list[Path]:
    """Write every prompt row (published or not) back to ``<directory>/<name>.yaml``, as the
    loader reads it back unchanged; returns the files written.

    A prompt keeps the file name it ships in (found in ``directory``, else in DESIGN_DIR); a
    prompt made in the admin gets its id's (``my-prompt`` -> ``my_prompt.yaml``). A file that
    already holds its row's content is left as it is, so a reviewer's diff shows the authors'
    changes alone, not a restyling of every prompt. Files of prompts that have no row are left
    as they are too.
    """
    names = {data["id"]: name for name, data in design_files_read(DESIGN_DIR)}
    present: dict[str, str] = {}
    if directory.is_dir():
        files = design_files_read(directory)
        names |= {data["id"]: name for name, data in files}
        present = {
            name: content_hash(Shipped.of(data["id"], 0, data).snapshot) for name, data in files
        }
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for row in DesignPromptRow.objects.order_by("position", "prompt_id"):
        name = names.get(row.prompt_id, f"{row.prompt_id.replace('-', '_').lstrip('_')}.yaml")
        snapshot = design_snapshot(row)
        if present.get(name) == content_hash(snapshot):
            continue
        path = directory / name
        path.write_text(bank_dump(design_spec_ordered(snapshot)), encoding="utf-8")
        written.append(path)
    return written
