from django.db import migrations, models

CHOICE_TYPES = ("single_choice", "multiple_choice")


def record_file_order(apps, schema_editor):
    """Attempts and loop items made before shuffling showed options in bank order: record it,
    and snapshot the options as they were then, so a later bank edit cannot change what the
    history says the person saw."""
    Attempt = apps.get_model("interview", "Attempt")
    LoopItem = apps.get_model("interview", "LoopItem")
    for attempt in Attempt.objects.filter(question__type__in=CHOICE_TYPES).select_related(
        "question"
    ):
        spec = attempt.question.spec
        answer = spec["answer"]
        correct = set(answer) if isinstance(answer, list) else {answer}
        picked = set(attempt.response.get("choices", [])) | (
            {attempt.response["choice"]} if "choice" in attempt.response else set()
        )
        attempt.option_order = list(range(len(spec["choices"])))
        attempt.feedback = attempt.feedback | {
            "choices": [
                {"text": text, "picked": i in picked, "correct": i in correct}
                for i, text in enumerate(spec["choices"])
            ]
        }
        attempt.save(update_fields=["option_order", "feedback"])
    for item in LoopItem.objects.filter(question__type__in=CHOICE_TYPES).select_related("question"):
        item.option_order = list(range(len(item.question.spec["choices"])))
        item.save(update_fields=["option_order"])


class Migration(migrations.Migration):
    dependencies = [
        ("interview", "0002_loop_round_follow_ups"),
    ]

    operations = [
        migrations.AddField(
            model_name="attempt",
            name="option_order",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="loopitem",
            name="option_order",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(record_file_order, migrations.RunPython.noop),
    ]
