"""Interview selectors: the functions that read."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, TextChoices
from django.utils import timezone

from grader.models import ContentVersion, Submission
from grader.selectors import problem_find, queue_unserved_note, submission_queue, submissions_of
from grader.versions import versions_of
from interview.design import DesignPrompt
from interview.design.practice import follow_ups_state
from interview.design_bank import design_prompt_at, design_prompt_of
from interview.judging import RubricSource
from interview.models import (
    Attempt,
    DesignPromptRow,
    Loop,
    LoopRound,
    LoopStatus,
    Question,
    QuestionType,
    ReviewCard,
    RoundKind,
)
from interview.question_bank import template_render

# A question's title is cut at a word to fit a line or two of a list.
TITLE_CHARS = 140
# Learning steps due within this are served now rather than leaving the session idle.
REVIEW_LEARN_AHEAD = timedelta(minutes=20)


def questions_published(topic: str | None = None, level: str | None = None) -> QuerySet[Question]:
    """Published questions, optionally of one topic and one level, in bank order."""
    questions = Question.objects.filter(published=True)
    if topic:
        questions = questions.filter(topic=topic)
    if level:
        questions = questions.filter(level=level)
    return questions.order_by("topic", "position", "bank_id")


class QuestionState(TextChoices):
    """Where a person stands with a question; the practice list filters and marks by it."""

    NEW = "new", "New"
    DUE = "due", "Due for review"
    MISSED = "missed", "Missed last time"
    MASTERED = "mastered", "Mastered"


def question_title(question: Question, params: dict[str, Any] | None = None) -> str:
    """A question's title: its text up to the question mark (or its first TITLE_CHARS), drawn with ``params`` or else the first option
    of each parameter (a real draw's text, never "{model.name}")."""
    spec = question.spec
    if params is None:
        params = {name: options[0] for name, options in spec.get("parameters", {}).items()}
    text = " ".join((template_render(spec["prompt"], params) if params else spec["prompt"]).split())
    question_end = re.match(r".+?\?(?=\s|$)", text)
    if question_end and len(question_end.group(0)) <= TITLE_CHARS:
        return question_end.group(0)
    if len(text) <= TITLE_CHARS:
        return text
    return text[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"


def practice_questions(
    user,
    topic: str | None = None,
    level: str | None = None,
    state: str | None = None,
    search: str = "",
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Published questions with the user's state of each (due first: a card due today, then
    missed: the last answer was wrong, mastered: right, new: never answered), filtered."""
    questions = questions_published(topic, level)
    if search:
        questions = questions.filter(Q(prompt__icontains=search) | Q(bank_id__icontains=search))
    now = now or timezone.now()
    last_correct: dict[int, bool] = {}
    for question_id, correct in (
        Attempt.objects.filter(user=user)
        .order_by("created_at")
        .values_list("question_id", "correct")
    ):
        last_correct[question_id] = correct
    due = set(
        ReviewCard.objects.filter(user=user, due__lt=_end_of_day(now)).values_list(
            "question_id", flat=True
        )
    )
    rows = []
    for question in questions:
        if question.pk in due:
            question_state = QuestionState.DUE
        elif question.pk not in last_correct:
            question_state = QuestionState.NEW
        elif last_correct[question.pk]:
            question_state = QuestionState.MASTERED
        else:
            question_state = QuestionState.MISSED
        if state and question_state != state:
            continue
        rows.append(
            {"question": question, "title": question_title(question), "state": question_state}
        )
    return rows


def question_published_get(bank_id: str) -> Question:
    """One published question (raises Question.DoesNotExist)."""
    return Question.objects.get(bank_id=bank_id, published=True)


def topics_counts() -> list[dict[str, Any]]:
    """Each topic with its number of published questions."""
    return list(
        Question.objects.filter(published=True)
        .values("topic")
        .annotate(count=Count("id"))
        .order_by("topic")
    )


def loops_of(user) -> QuerySet[Loop]:
    """A user's loops, newest first."""
    return Loop.objects.filter(user=user).order_by("-started_at")


def loop_active_of(user) -> Loop | None:
    return Loop.objects.filter(user=user, status=LoopStatus.ACTIVE).first()


def loop_get(user, loop_id: int) -> Loop:
    """One of the user's loops (raises Loop.DoesNotExist for anyone else's)."""
    return Loop.objects.get(pk=loop_id, user=user)


def round_items_with_attempts(loop_round: LoopRound) -> list[dict[str, Any]]:
    """The round's questions in order, each with the candidate's attempt (or None)."""
    attempts = {a.question_id: a for a in Attempt.objects.filter(loop_round=loop_round)}
    return [
        {"item": item, "question": item.question, "attempt": attempts.get(item.question_id)}
        for item in loop_round.items.select_related("question").order_by("position")
    ]


def reviews_due(user, now: datetime | None = None) -> QuerySet[ReviewCard]:
    """The user's review cards to study now, most overdue first: those due, and learning steps
    due within REVIEW_LEARN_AHEAD (as Anki does, so a short step does not end the session)."""
    now = now or timezone.now()
    return (
        ReviewCard.objects.filter(user=user, due__lte=now + REVIEW_LEARN_AHEAD)
        .select_related("question")
        .order_by("due", "pk")
    )


def reviews_due_count(user, now: datetime | None = None) -> int:
    """Cards due by the end of today (UTC). A card rated Again or Hard comes back minutes later
    and stays in this count, so the number falls only as cards leave today, never jumps back."""
    now = now or timezone.now()
    return ReviewCard.objects.filter(user=user, due__lt=_end_of_day(now)).count()


def _end_of_day(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def reviews_next_due(user, now: datetime | None = None) -> datetime | None:
    """When the user's next card not yet servable comes due."""
    now = now or timezone.now()
    card = (
        ReviewCard.objects.filter(user=user, due__gt=now + REVIEW_LEARN_AHEAD)
        .order_by("due")
        .first()
    )
    return card.due if card else None


def topic_progress(user) -> list[dict[str, Any]]:
    """Per topic: attempts, share correct, and the share correct per ISO week, oldest first."""
    weekly: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = Attempt.objects.filter(user=user).values_list("question__topic", "correct", "created_at")
    for topic, correct, created_at in rows:
        year, week, _ = created_at.isocalendar()
        cell = weekly[topic][f"{year}-W{week:02d}"]
        cell[0] += 1
        cell[1] += int(correct)
        totals[topic][0] += 1
        totals[topic][1] += int(correct)
    return [
        {
            "topic": topic,
            "attempts": totals[topic][0],
            "correct": totals[topic][1],
            "share": totals[topic][1] / totals[topic][0],
            "weeks": [
                {"week": week, "attempts": n, "share": ok / n}
                for week, (n, ok) in sorted(weekly[topic].items())
            ],
        }
        for topic in sorted(totals)
    ]


def coding_round_context(user, loop_round: LoopRound) -> dict[str, Any]:
    """The round's grader problem, the user's submissions to it since the round opened, and
    what to say when one waits for a worker that is not running."""
    problem = problem_find(loop_round.problem_slug)
    submissions = [
        s
        for s in submissions_of(user, loop_round.problem_slug)
        if s.created_at >= loop_round.started_at
    ]
    waiting = [s for s in submissions if s.state == Submission.State.QUEUED]
    no_worker = queue_unserved_note(submission_queue(waiting[0])) if problem and waiting else ""
    return {"problem": problem, "submissions": submissions, "no_worker": no_worker}


def design_prompt_rows_published() -> QuerySet[DesignPromptRow]:
    """The rows of the design prompts candidates see, in the files' order (authors' after)."""
    return DesignPromptRow.objects.filter(published=True)


def design_prompts_published() -> list[DesignPrompt]:
    """The design prompts candidates see, in the files' order (authors' prompts after)."""
    return [design_prompt_of(row) for row in design_prompt_rows_published()]


def design_prompt_row_published(prompt_id: str) -> DesignPromptRow | None:
    """A published design prompt's row by id, or None."""
    return design_prompt_rows_published().filter(prompt_id=prompt_id).first()


def design_prompt_published(prompt_id: str) -> DesignPrompt | None:
    """A published design prompt by id, or None."""
    row = design_prompt_row_published(prompt_id)
    return design_prompt_of(row) if row else None


def design_round_prompt(loop_round: LoopRound) -> DesignPrompt | None:
    """The design round's prompt as it was drawn (its version), or None when the database no
    longer has it. A round keeps its prompt whatever was edited or unpublished since; a round
    drawn before versions were kept reads the prompt's row as it is now."""
    if loop_round.design_version_id:
        return design_prompt_at(loop_round.design_version)
    row = DesignPromptRow.objects.filter(prompt_id=loop_round.design_id).first()
    return design_prompt_of(row) if row else None


def design_version_of(prompt_id: str, version_id: int | None) -> ContentVersion | None:
    """A design prompt's version by pk, or None when it is no version of that prompt's row
    (a practice attempt keeps the pk of the version it was drawn from)."""
    row = DesignPromptRow.objects.filter(prompt_id=prompt_id).first()
    return versions_of(row).filter(pk=version_id).first() if row and version_id else None


def design_round_attempt(loop_round: LoopRound, prompt: DesignPrompt) -> dict[str, Any]:
    """An opened design round as the standalone round's attempt mapping, so that both
    release, grade and show follow-ups with the same code (`interview.design.practice`)."""
    return {
        "prompt_id": prompt.id,
        "params": loop_round.design["params"],
        "started_at": loop_round.started_at.isoformat(),
        "deadline": loop_round.deadline.isoformat(),
        # A loop's round is shorter than the prompt's own length: follow-ups come at the same
        # share of it ("traffic grows 10x" 20 minutes into 45 comes 4.4 minutes into 10).
        "follow_up_scale": loop_round.duration_s / (prompt.minutes * 60),
        "result": loop_round.feedback if loop_round.submitted_at else None,
        "follow_ups": loop_round.follow_ups,
    }


def design_round_follow_ups(user, round_id: int, now: datetime, after: int) -> dict | None:
    """The user's opened design round's follow-ups released by `now` from index `after` on,
    as `follow_ups_state` gives them; None for a round that is not such a round of theirs."""
    loop_round = (
        LoopRound.objects.select_related("loop")
        .filter(pk=round_id, loop__user=user, kind=RoundKind.DESIGN, started_at__isnull=False)
        .first()
    )
    prompt = design_round_prompt(loop_round) if loop_round else None
    if prompt is None:
        return None
    return follow_ups_state(prompt, design_round_attempt(loop_round, prompt), now, after)


def judge_rubrics() -> RubricSource:
    """The rubrics the pages grade against, for `manage.py grade_answer` and the judge's
    warm-up: every short-answer question's and design prompt's row, drafts included (an author
    tries a draft's rubric before publishing it)."""
    return RubricSource(
        {q.bank_id: q.spec for q in Question.objects.filter(type=QuestionType.SHORT_ANSWER)},
        [design_prompt_of(row) for row in DesignPromptRow.objects.all()],
    )
