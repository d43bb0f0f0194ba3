"""A problem's editorial; rows loaded from the bank keep counting as unedited.

``shipped_hash`` is the hash of everything an author edits (grader.bank.CONTENT_FIELDS). The
new field joins that set, so each row that still held exactly what the bank loaded has its hash
recomputed with the (empty) editorial: otherwise the loader would take every such row for an
author's edit and never give it the bank's editorial.
"""

import hashlib
import json

from django.db import migrations, models

# grader.bank.CONTENT_FIELDS before this migration, frozen here as migrations must be.
FIELDS_BEFORE = (
    "slug", "title", "statement_md", "harness", "entry_point", "queue", "starter_code",
    "reference_code", "oracle_code", "inputs_code", "spec", "checks", "published",
)  # fmt: skip


def _hash(snapshot: dict) -> str:
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def shipped_hashes_with_editorial(apps, schema_editor) -> None:
    Problem = apps.get_model("grader", "Problem")
    for row in Problem.objects.exclude(shipped_hash=""):
        before = {name: getattr(row, name) for name in FIELDS_BEFORE}
        if _hash(before) == row.shipped_hash:
            row.shipped_hash = _hash(before | {"editorial_md": row.editorial_md})
            row.save(update_fields=["shipped_hash"])


class Migration(migrations.Migration):
    dependencies = [("grader", "0008_merge_20261207_1334")]

    operations = [
        migrations.AddField(
            model_name="problem",
            name="editorial_md",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The idea, the pitfalls, the complexity, what the reference does and "
                "where it could be faster; shown only to a user with an accepted submission. "
                "Needed to publish.",
            ),
        ),
        migrations.RunPython(shipped_hashes_with_editorial, migrations.RunPython.noop),
    ]
