"""Grade written answers with the judge the pages and the API use.

    python manage.py grade_answer --question kv-explain-memory-cost --text "..." [--json]
    python manage.py grade_answer --design tp2-vs-tp4 --section throughput_model --file a.txt
    python manage.py grade_answer --design tp2-vs-tp4 --follow-up latency-sla --text "..."
    python manage.py grade_answer --batch answers.jsonl

`--batch` reads one JSON object per line ({"question": ID} or {"design": P, "section": S} or
{"design": P, "follow_up": F}, plus "text") and prints one JSON result per line, in order.
Rubrics are the database's, as the pages grade with them: an author's edit in the admin counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from interview.judging import TargetUnknown, Verdict, target_from_dict, target_judge
from interview.selectors import judge_rubrics


class Command(BaseCommand):
    help = "Grade a written answer (or a JSONL batch): score, pass/fail, each point's evidence."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--question", help="a short-answer bank question id")
        parser.add_argument("--design", help="a design prompt id")
        parser.add_argument("--section", help="a section of the design prompt")
        parser.add_argument("--follow-up", dest="follow_up", help="a follow-up of the prompt")
        parser.add_argument("--text", help="the answer")
        parser.add_argument("--file", type=Path, help="a file holding the answer")
        parser.add_argument("--batch", type=Path, help="a JSONL file of targets and texts")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"]:
            self._batch(options["batch"])
            return
        if (options["text"] is None) == (options["file"] is None):
            raise CommandError("give the answer with --text or --file (one of them)")
        text = options["text"] if options["text"] is not None else _read(options["file"])
        keys = ("question", "design", "section", "follow_up")
        try:
            verdict = target_judge(
                target_from_dict({k: options[k] for k in keys}), text, judge_rubrics()
            )
        except TargetUnknown as error:
            raise CommandError(str(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(verdict.as_dict()))
        else:
            self.stdout.write(_as_text(verdict))

    def _batch(self, path: Path) -> None:
        source = judge_rubrics()
        for number, line in enumerate(_read(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                    raise TargetUnknown('each line is a JSON object with a "text"')
                verdict = target_judge(target_from_dict(item), item["text"], source)
            except (json.JSONDecodeError, TargetUnknown) as error:
                raise CommandError(f"{path}:{number}: {error}") from error
            self.stdout.write(json.dumps(verdict.as_dict()))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from error


def _as_text(verdict: Verdict) -> str:
    data = verdict.as_dict()
    lines = [
        f"{verdict.target.label()}: score {data['score']:.2f}, "
        f"{'PASS' if data['passed'] else 'FAIL'} (pass mark {verdict.pass_score:.2f})"
        + ("" if data["confident"] else "; not confident: check against the rubric")
        + ("; vacuous: mostly topic words or the question restated" if data["vacuous"] else ""),
        f"  points covered: {data['coverage']:.0%} of the rubric's weight",
    ]
    for point in data["points"]:
        mark = "✓" if point["covered"] else "✗"
        evidence = f' — "{point["evidence"]}"' if point["evidence"] else ""
        lines.append(f"  {mark} {point['id']} ({point['strength']:.2f}){evidence}")
    for misconception in data["misconceptions"]:
        lines.append(f'  ⚠ {misconception["id"]} — "{misconception["evidence"]}"')
    for sentence in data["contradictions"]:
        lines.append(f'  ⚠ goes against the rubric — "{sentence}"')
    return "\n".join(lines)
