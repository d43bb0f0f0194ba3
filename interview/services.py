"""Interview services: the functions that write (attempts, loops, scorecards, review cards)."""

from __future__ import annotations

import functools
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from fsrs import Card, Rating, Scheduler

from grader.access import submission_create_limited
from grader.bank import DIFFICULTIES
from grader.models import ContentVersion, Submission
from grader.selectors import problem_find, problem_fit, problems_published
from grader.services import SubmissionRejected
from grader.versions import version_record
from interview import scorecard as scorecards
from interview import selectors
from interview.design import DesignPrompt, draw_parameters, practice
from interview.design_bank import design_prompt_of, design_version_current
from interview.grading import GradeResult, ResponseInvalid, response_grade, response_parse
from interview.models import (
    LEVEL_ORDER,
    Attempt,
    CardOrigin,
    Level,
    Loop,
    LoopItem,
    LoopLength,
    LoopRound,
    LoopStatus,
    Question,
    QuestionType,
    ReviewCard,
    ReviewLog,
    ReviewRating,
    RoundKind,
)
from interview.notifications import round_notify
from interview.question_bank import (
    option_order_draw,
    option_order_or_bank,
    option_order_valid,
    parameters_draw,
    question_snapshot,
)

PRACTICE_SALT = "interview.practice"
# A practice question's drawn parameters stay valid this long; after that, draw again.
PRACTICE_TOKEN_MAX_AGE_S = 24 * 3600
# Fuzzing off: intervals are reproducible, so tests and the history page agree.
SCHEDULER = Scheduler(enable_fuzzing=False)


class LoopError(Exception):
    """A refused loop action (finished already, out of order); nothing changed."""


class LoopNotYours(LoopError):
    """The loop, round or question belongs to someone else (or does not exist)."""


class RoundClosed(LoopError):
    """The round's time is over: it accepts no more code (nothing was stored)."""


@dataclass(frozen=True)
class RoundPlan:
    kind: RoundKind
    minutes: int
    questions: int = 0


# Each loop length splits into concepts, then coding, then design; a kind the bank lacks is
# skipped. Concept rounds give about two minutes per question, as a phone screen does.
LOOP_PLANS: dict[int, tuple[RoundPlan, ...]] = {
    30: (
        RoundPlan(RoundKind.CONCEPTS, 10, 5),
        RoundPlan(RoundKind.CODING, 10),
        RoundPlan(RoundKind.DESIGN, 10),
    ),
    45: (
        RoundPlan(RoundKind.CONCEPTS, 15, 7),
        RoundPlan(RoundKind.CODING, 15),
        RoundPlan(RoundKind.DESIGN, 15),
    ),
    60: (
        RoundPlan(RoundKind.CONCEPTS, 20, 10),
        RoundPlan(RoundKind.CODING, 20),
        RoundPlan(RoundKind.DESIGN, 20),
    ),
}
# At most one short answer per this many concept questions: they take the longest to write.
SHORT_ANSWER_EVERY = 4
# A coding problem that needs longer than its round's share takes the time from the concept
# round, which keeps at least this long, at about two minutes per question.
MIN_CONCEPT_MINUTES = 5
# The hardest problem a loop of each level hands out: a junior's loop never meets the
# eight-method allocator, a mid-level one no Triton kernel; seniors and staff get any.
LEVEL_MAX_DIFFICULTY = {
    Level.JUNIOR: "easy",
    Level.MID: "medium",
    Level.SENIOR: "hard",
    Level.STAFF: "hard",
}
MINUTES_PER_QUESTION = 2


# ---------------------------------------------------------------- accounts


def user_signup(*, username: str, email: str, password: str):
    """Create an account; the view validated the form (unique name, password rules)."""
    return get_user_model().objects.create_user(username=username, email=email, password=password)


# ---------------------------------------------------------------- practice


@dataclass(frozen=True)
class PracticeDraw:
    """One practice attempt before it is answered: its numbers, its option order, its proof."""

    params: dict[str, Any]
    option_order: list[int]
    token: str


def practice_token(
    question: Question, params: Mapping[str, Any], option_order: list[int] | None = None
) -> str:
    """A signed token carrying what was drawn for one practice attempt: the parameters and
    the order its options are shown in."""
    payload = {"q": question.bank_id, "p": dict(params), "o": list(option_order or [])}
    return signing.dumps(payload, salt=PRACTICE_SALT)


def practice_draw(question: Question, rng: random.Random | None = None) -> PracticeDraw:
    """Fresh parameters and a fresh option order for a practice attempt, and the token that
    proves them."""
    rng = rng or random.Random()
    params = parameters_draw(question.spec, rng)
    order = option_order_draw(question.spec, rng)
    return PracticeDraw(params, order, practice_token(question, params, order))


def practice_token_read(question: Question, token: str) -> PracticeDraw:
    """The draw a practice token carries; ResponseInvalid for a forged, expired or foreign one,
    or one whose option order no longer fits the question (the bank changed since)."""
    try:
        payload = signing.loads(token, salt=PRACTICE_SALT, max_age=PRACTICE_TOKEN_MAX_AGE_S)
    except signing.BadSignature as error:
        raise ResponseInvalid("this attempt expired; the question was drawn again") from error
    if payload.get("q") != question.bank_id:
        raise ResponseInvalid("the attempt token belongs to another question")
    # Tokens signed before options were shuffled carry no order: they were shown in bank order.
    order = payload.get("o", list(range(len(question.spec.get("choices", [])))))
    if not option_order_valid(question.spec, order):
        raise ResponseInvalid("this question changed since it was drawn; it was drawn again")
    return PracticeDraw(payload["p"], order, token)


def practice_answer(
    *, user, question: Question, data: Mapping[str, Any], token: str, rate_due: bool = True
) -> Attempt:
    """Grade a practice answer at once; a miss (or a missed rubric point) becomes a review card.
    With ``rate_due`` the grade also rates the question's due cards (in review the person does)."""
    draw, response, result = _practice_grade(question, data, token)
    with transaction.atomic():
        attempt = _attempt_create(user, question, draw, response, result)
        review_cards_record(attempt, result, rate_due=rate_due)
    return attempt


def question_try(*, question: Question, data: Mapping[str, Any], token: str) -> Attempt:
    """Grade an answer to a practice draw as a candidate's would be, keeping nothing (an author
    trying a draft): an unsaved Attempt, for the feedback page."""
    draw, response, result = _practice_grade(question, data, token)
    return _attempt_build(None, question, draw, response, result)


def _practice_grade(
    question: Question, data: Mapping[str, Any], token: str
) -> tuple[PracticeDraw, dict[str, Any], GradeResult]:
    draw = practice_token_read(question, token)
    response = response_parse(question.spec, data, draw.option_order)
    return draw, response, response_grade(question.spec, draw.params, response, draw.option_order)


def question_version_current(question: Question) -> ContentVersion:
    """The version holding the question's content now (recorded if no version holds it yet)."""
    return version_record(question, question_snapshot(question))


def _attempt_build(
    user,
    question: Question,
    draw: PracticeDraw | LoopItem,
    response: Mapping[str, Any],
    result: GradeResult,
    loop_round: LoopRound | None = None,
    late: bool = False,
) -> Attempt:
    return Attempt(
        user=user,
        question=question,
        loop_round=loop_round,
        params=dict(draw.params),
        option_order=list(draw.option_order),
        response=dict(response),
        score=result.score,
        correct=result.correct,
        late=late,
        feedback=result.feedback
        | {"expected": result.expected, "missed_points": list(result.missed_points)},
    )


def _attempt_create(*args, **kwargs) -> Attempt:
    """Store an attempt (see _attempt_build) with the question's version it was graded against."""
    attempt = _attempt_build(*args, **kwargs)
    attempt.question_version = question_version_current(attempt.question)
    attempt.save()
    return attempt


# ---------------------------------------------------------------- review cards (FSRS)


def review_cards_record(
    attempt: Attempt, result: GradeResult, rate_due: bool = True
) -> list[ReviewCard]:
    """Cards for a miss: one for the question, one per missed rubric point; with ``rate_due``,
    the grade also reviews the question's cards that are due (Good for a hit, Again a miss)."""
    now = attempt.created_at
    touched = []
    targets = [("", result.correct)]
    rubric_ids = [p["id"] for p in attempt.question.spec.get("rubric", {}).get("points", [])]
    targets += [(point, point not in result.missed_points) for point in rubric_ids]
    for point_id, passed in targets:
        card = ReviewCard.objects.filter(
            user=attempt.user, question=attempt.question, point_id=point_id
        ).first()
        if card is None and not passed:
            card = review_card_create(attempt.user, attempt.question, point_id, now)
            touched.append(card)
        elif rate_due and card is not None and card.due <= now:
            touched.append(
                _review_apply(card, ReviewRating.GOOD if passed else ReviewRating.AGAIN, now)
            )
    return touched


def review_card_create(
    user, question: Question, point_id: str, now: datetime, origin: str = CardOrigin.MISSED
) -> ReviewCard:
    """A new card, due at once (a miss is worth revisiting today); an existing one is kept."""
    review_card, _ = ReviewCard.objects.get_or_create(
        user=user,
        question=question,
        point_id=point_id,
        defaults={
            "fsrs": Card(due=now).to_dict(),
            "due": now,
            "origin": origin,
            "question_version": question_version_current(question),
        },
    )
    return review_card


def review_card_add(*, user, question: Question, point_id: str = "") -> ReviewCard:
    """A card the person asks for, on a question or one of its rubric points (ValueError for a
    point the question does not have); asking twice keeps the one card."""
    points = {p["id"] for p in question.spec.get("rubric", {}).get("points", [])}
    if point_id and point_id not in points:
        raise ValueError(f"{question.bank_id} has no rubric point {point_id!r}")
    return review_card_create(user, question, point_id, timezone.now(), CardOrigin.ADDED)


def _review_apply(
    card: ReviewCard, rating: int, now: datetime, suggested: int | None = None
) -> ReviewCard:
    fsrs_card, _ = SCHEDULER.review_card(Card.from_dict(card.fsrs), Rating(rating), now)
    card.fsrs = fsrs_card.to_dict()
    card.due = fsrs_card.due
    card.reviews = F("reviews") + 1
    if rating == ReviewRating.AGAIN:
        card.lapses = F("lapses") + 1
    card.save(update_fields=["fsrs", "due", "reviews", "lapses"])
    ReviewLog.objects.create(
        card=card, rating=rating, suggested=suggested, reviewed_at=now, due_after=card.due
    )
    card.refresh_from_db()
    return card


def review_intervals(card: ReviewCard, now: datetime) -> dict[int, timedelta]:
    """How long until the card comes back after each rating given now (shown on its button)."""
    return {
        rating: SCHEDULER.review_card(Card.from_dict(card.fsrs), Rating(rating), now)[0].due - now
        for rating in ReviewRating.values
    }


def review_suggested_rating(card: ReviewCard, attempt: Attempt) -> int:
    """The grade as a rating, the default the person may override: a point card asks whether
    that point was covered; a question card, whether the answer was right and complete."""
    if card.point_id:
        missed = card.point_id in attempt.feedback.get("missed_points", [])
        return ReviewRating.AGAIN if missed else ReviewRating.GOOD
    if not attempt.correct:
        return ReviewRating.AGAIN
    return ReviewRating.GOOD if attempt.score >= 1 else ReviewRating.HARD


def review_answer(
    *, user, card_id: int, data: Mapping[str, Any], token: str
) -> tuple[ReviewCard, Attempt]:
    """Answer a due card's question, graded like practice. The card is not rated here: the
    person rates it after seeing the answer (``review_rate``), the grade as the default."""
    card = ReviewCard.objects.select_related("question").get(pk=card_id, user=user)
    attempt = practice_answer(
        user=user, question=card.question, data=data, token=token, rate_due=False
    )
    return card, attempt


def review_rate(
    *,
    user,
    card_id: int,
    rating: int,
    suggested: int | None = None,
    now: datetime | None = None,
) -> ReviewCard:
    """Rate a card by hand (Again, Hard, Good, Easy) and schedule its next review."""
    if rating not in ReviewRating.values:
        raise ValueError(f"rating {rating} is not one of {ReviewRating.values}")
    if suggested not in (None, *ReviewRating.values):
        raise ValueError(f"suggested rating {suggested} is not one of {ReviewRating.values}")
    with transaction.atomic():
        card = ReviewCard.objects.select_for_update().get(pk=card_id, user=user)
        return _review_apply(card, rating, now or timezone.now(), suggested)


# ---------------------------------------------------------------- mock-interview loops


def _allowed_levels(level: str) -> list[str]:
    index = LEVEL_ORDER.index(Level(level))
    return [str(lv) for lv in LEVEL_ORDER[max(0, index - 1) : index + 1]]


def concept_questions_pick(level: str, count: int, rng: random.Random) -> list[Question]:
    """Questions at the level and the one below, spread over topics, few short answers."""
    pool = list(Question.objects.filter(published=True, level__in=_allowed_levels(level)))
    rng.shuffle(pool)
    by_topic: dict[str, list[Question]] = {}
    for question in pool:
        by_topic.setdefault(question.topic, []).append(question)
    topics = list(by_topic)
    rng.shuffle(topics)
    short_budget = max(1, count // SHORT_ANSWER_EVERY)
    picked: list[Question] = []
    while len(picked) < count and any(by_topic.values()):
        for topic in topics:
            candidates = by_topic[topic]
            while candidates:
                question = candidates.pop()
                if question.type == QuestionType.SHORT_ANSWER:
                    if short_budget == 0:
                        continue
                    short_budget -= 1
                picked.append(question)
                break
            if len(picked) == count:
                break
    return picked


def coding_problems_fitting(level: str, max_minutes: int) -> list:
    """The published problems a loop of ``level`` may hand out in a coding round of at most
    ``max_minutes``, by slug. The rule: a problem fits when its expected time is at most the
    round's minutes and its difficulty at most the level's ceiling (``LEVEL_MAX_DIFFICULTY``);
    of those, the ones at the ceiling or one below it, else only the hardest that fit. Empty
    when none fits (the loop then has no coding round)."""
    ceiling = DIFFICULTIES.index(LEVEL_MAX_DIFFICULTY[Level(level)])
    rank = {
        problem: DIFFICULTIES.index(problem_fit(problem)[0])
        for problem in problems_published()
        if problem_fit(problem)[1] <= max_minutes
    }
    fitting = [problem for problem, r in rank.items() if r <= ceiling]
    preferred = [problem for problem in fitting if rank[problem] >= ceiling - 1]
    if preferred or not fitting:
        return preferred
    hardest = max(rank[problem] for problem in fitting)
    return [problem for problem in fitting if rank[problem] == hardest]


def coding_problem_pick(level: str, max_minutes: int, rng: random.Random):
    """One of ``coding_problems_fitting``, drawn with ``rng``; None when none fits."""
    fitting = coding_problems_fitting(level, max_minutes)
    return rng.choice(fitting) if fitting else None


def _round_plans(level: str, length_min: int, rng: random.Random):
    """The loop's rounds as (plan, coding problem or None): a problem that needs longer than
    the coding round's share gets its expected time, taken from the concept round."""
    plans = {plan.kind: plan for plan in LOOP_PLANS[length_min]}
    concepts, coding = plans[RoundKind.CONCEPTS], plans[RoundKind.CODING]
    spare = concepts.minutes - MIN_CONCEPT_MINUTES
    problem = coding_problem_pick(level, coding.minutes + spare, rng)
    extra = max(0, problem_fit(problem)[1] - coding.minutes) if problem else 0
    concept_minutes = concepts.minutes - extra
    plans[RoundKind.CONCEPTS] = RoundPlan(
        RoundKind.CONCEPTS,
        concept_minutes,
        min(concepts.questions, concept_minutes // MINUTES_PER_QUESTION),
    )
    plans[RoundKind.CODING] = RoundPlan(RoundKind.CODING, coding.minutes + extra)
    return [(plans[plan.kind], problem) for plan in LOOP_PLANS[length_min]]


def _design_prompt_pick(level: str, rng: random.Random) -> dict[str, Any] | None:
    """A design round's fields: a prompt of the level, its drawn numbers and its version."""
    prompts = [(row, design_prompt_of(row)) for row in selectors.design_prompt_rows_published()]
    suitable = [p for p in prompts if p[1].level in _allowed_levels(level)] or prompts
    if not suitable:
        return None
    row, prompt = rng.choice(suitable)
    return {
        "design_id": prompt.id,
        "design": {"id": prompt.id, "title": prompt.title, "params": draw_parameters(prompt, rng)},
        "design_version": design_version_current(row),
    }


def loop_start(*, user, level: str, length_min: int, rng: random.Random | None = None) -> Loop:
    """Assemble a loop (concepts, then coding and design where they exist) and open round 1."""
    if level not in Level.values or length_min not in LoopLength.values:
        raise LoopError("choose a level and a length of 30, 45 or 60 minutes")
    if Loop.objects.filter(user=user, status=LoopStatus.ACTIVE).exists():
        raise LoopError("finish the loop in progress before starting another")
    rng = rng or random.Random()
    now = timezone.now()
    with transaction.atomic():
        loop = Loop.objects.create(user=user, level=level, length_min=length_min, started_at=now)
        position = 0
        for plan, problem in _round_plans(level, length_min, rng):
            fields: dict[str, Any] = {}
            if plan.kind == RoundKind.CONCEPTS:
                questions = concept_questions_pick(level, plan.questions, rng)
                if not questions:
                    continue
                title = f"Concepts: {len(questions)} questions"
            elif plan.kind == RoundKind.CODING:
                if problem is None:
                    continue
                title, fields = f"Coding: {problem.title}", {"problem_slug": problem.slug}
            else:
                fields = _design_prompt_pick(level, rng) or {}
                if not fields:
                    continue
                title = f"System design: {fields['design']['title']}"
            loop_round = LoopRound.objects.create(
                loop=loop,
                position=position,
                kind=plan.kind,
                title=title,
                duration_s=plan.minutes * 60,
                **fields,
            )
            if plan.kind == RoundKind.CONCEPTS:
                LoopItem.objects.bulk_create(
                    LoopItem(
                        round=loop_round,
                        position=i,
                        question=q,
                        params=parameters_draw(q.spec, rng),
                        option_order=option_order_draw(q.spec, rng),
                    )
                    for i, q in enumerate(questions)
                )
            position += 1
        if position == 0:
            raise LoopError("the question bank is empty; run manage.py load_bank")
    first = loop.rounds.get(position=0)
    return round_open(user=user, round_id=first.pk, now=now).loop


def _round_for_user(user, round_id: int, lock: bool = False) -> LoopRound:
    rounds = LoopRound.objects.select_related("loop")
    if lock:
        rounds = rounds.select_for_update()
    loop_round = rounds.filter(pk=round_id).first()
    if loop_round is None or loop_round.loop.user_id != user.pk:
        raise LoopNotYours("that round is not part of one of your loops")
    return loop_round


def round_open(*, user, round_id: int, now: datetime | None = None) -> LoopRound:
    """Start a round's clock once (the server-side deadline); opening again changes nothing."""
    now = now or timezone.now()
    loop_round = _round_for_user(user, round_id)
    if loop_round.loop.status != LoopStatus.ACTIVE:
        return loop_round
    LoopRound.objects.filter(pk=round_id, started_at__isnull=True).update(
        started_at=now, deadline=now + timedelta(seconds=loop_round.duration_s)
    )
    loop_round.refresh_from_db()
    return loop_round


def answer_submit(
    *, user, item_id: int, data: Mapping[str, Any], now: datetime | None = None
) -> Attempt:
    """Grade a concept answer inside a loop. A second submission returns the first, unchanged;
    an answer after the round's deadline is kept and marked late."""
    now = now or timezone.now()
    item = LoopItem.objects.select_related("round__loop", "question").filter(pk=item_id).first()
    if item is None or item.round.loop.user_id != user.pk:
        raise LoopNotYours("that question is not part of one of your loops")
    if item.round.loop.status != LoopStatus.ACTIVE:
        raise LoopError("this loop is finished; answers are closed")
    existing = Attempt.objects.filter(loop_round=item.round, question=item.question).first()
    if existing:
        return existing
    loop_round = round_open(user=user, round_id=item.round_id, now=now)
    item.option_order = option_order_or_bank(item.question.spec, item.option_order)
    response = response_parse(item.question.spec, data, item.option_order)
    result = response_grade(item.question.spec, item.params, response, item.option_order)
    try:
        with transaction.atomic():
            _loop_lock_active(item.round.loop_id)
            attempt = _attempt_create(
                user,
                item.question,
                item,
                response,
                result,
                loop_round,
                late=now > loop_round.deadline,
            )
            review_cards_record(attempt, result)
    except IntegrityError:
        return Attempt.objects.get(loop_round=item.round, question=item.question)
    return attempt


def round_submit(
    *, user, round_id: int, data: Mapping[str, Any], now: datetime | None = None
) -> LoopRound:
    """Submit a round's work. Coding: each call sends code to the grader through its limits
    while the round is open (the best verdict counts; RoundClosed after the deadline,
    LimitExceeded over a limit). Design: graded once, as the standalone round grades it (evidence per
    rubric point, roofline flags); later submissions change nothing. A design answer that
    cannot be graded raises AnswerInvalid with its field errors, and nothing is stored."""
    now = now or timezone.now()
    loop_round = _round_open_active(user, round_id, now)
    if loop_round.kind == RoundKind.CODING:
        if now > loop_round.deadline:
            raise RoundClosed("this round's time is over; it accepts no more code")
        _coding_submit(user, loop_round, data)
        return loop_round
    if loop_round.kind != RoundKind.DESIGN:
        raise LoopError("concept rounds are answered question by question")
    if loop_round.submitted_at is not None:
        return loop_round
    prompt = _design_prompt(loop_round)
    attempt = selectors.design_round_attempt(loop_round, prompt)
    result = practice.attempt_grade(prompt, attempt, data, now)
    with transaction.atomic():
        locked = LoopRound.objects.select_for_update().get(pk=round_id)
        if locked.submitted_at is None:
            locked.response = {
                k: str(v) for k, v in data.items() if k.startswith(("numeric-", "section-"))
            }
            locked.feedback, locked.submitted_at, locked.late = result, now, result["late"]
            locked.score = scorecards.design_round_score(prompt, result, locked.follow_ups)
            locked.save(update_fields=["response", "feedback", "submitted_at", "late", "score"])
            # The answer releases the remaining follow-ups: tell the round's open pages.
            transaction.on_commit(functools.partial(round_notify, round_id))
    locked.refresh_from_db()  # the feedback as stored: JSON lists, not the grader's tuples
    return locked


def design_follow_up_answer(
    *, user, round_id: int, follow_up_id: str, text: str, now: datetime | None = None
) -> dict[str, Any]:
    """Grade one follow-up of a loop's design round against its own rubric, once: a second
    answer returns the first, unchanged. FollowUpNotDue before the server released it,
    AnswerInvalid for a text too long; an answer after the deadline is kept and marked late."""
    now = now or timezone.now()
    loop_round = _round_open_active(user, round_id, now)
    if loop_round.kind != RoundKind.DESIGN:
        raise LoopError("only design rounds have follow-ups")
    if follow_up_id in loop_round.follow_ups:
        return loop_round.follow_ups[follow_up_id]
    prompt = _design_prompt(loop_round)
    attempt = selectors.design_round_attempt(loop_round, prompt)
    graded = practice.follow_up_grade(prompt, attempt, follow_up_id, text, now)
    with transaction.atomic():
        _loop_lock_active(loop_round.loop_id)
        locked = LoopRound.objects.select_for_update().get(pk=round_id)
        if follow_up_id not in locked.follow_ups:
            locked.follow_ups = locked.follow_ups | {
                follow_up_id: graded | {"late": now > locked.deadline}
            }
            result = locked.feedback if locked.submitted_at else None
            locked.score = scorecards.design_round_score(prompt, result, locked.follow_ups)
            locked.save(update_fields=["follow_ups", "score"])
    locked.refresh_from_db(fields=["follow_ups"])
    return locked.follow_ups[follow_up_id]


def _round_open_active(user, round_id: int, now: datetime) -> LoopRound:
    loop_round = round_open(user=user, round_id=round_id, now=now)
    if loop_round.loop.status != LoopStatus.ACTIVE:
        raise LoopError("this loop is finished; answers are closed")
    return loop_round


def _loop_lock_active(loop_id: int) -> None:
    """Hold the loop's row until the caller's transaction ends, so an answer graded while the
    loop was being finished is either in its scorecard or refused, never stored after it."""
    if not Loop.objects.select_for_update().filter(pk=loop_id, status=LoopStatus.ACTIVE).exists():
        raise LoopError("this loop is finished; answers are closed")


def design_practice_start(prompt_id: str, now: datetime) -> dict[str, Any] | None:
    """A standalone design attempt at a published prompt (practice.attempt_start) that keeps
    the prompt's version it is answered against; None for no such published prompt."""
    row = selectors.design_prompt_row_published(prompt_id)
    if row is None:
        return None
    version = design_version_current(row)
    rng = random.Random(secrets.randbits(64))
    attempt = practice.attempt_start(design_prompt_of(row), rng, now)
    return attempt | {"version_id": version.pk, "version": version.number}


def _design_prompt(loop_round: LoopRound) -> DesignPrompt:
    prompt = selectors.design_round_prompt(loop_round)
    if prompt is None:
        raise LoopError("this design prompt is no longer available")
    return prompt


def _coding_submit(user, loop_round: LoopRound, data: Mapping[str, Any]) -> int:
    problem = problem_find(loop_round.problem_slug)
    if problem is None:
        raise LoopError("this round's problem is no longer available")
    try:
        submission, _ = submission_create_limited(
            user=user,
            problem=problem,
            code=str(data.get("code", "")),
            purpose=Submission.Purpose.INTERVIEW,
        )
    except SubmissionRejected as error:
        raise ResponseInvalid(str(error)) from error
    return submission.pk


def loop_finish(*, user, loop_id: int, now: datetime | None = None) -> Loop:
    """Close a loop exactly once and store its scorecard; a second call is refused."""
    now = now or timezone.now()
    with transaction.atomic():
        loop = Loop.objects.select_for_update().filter(pk=loop_id, user=user).first()
        if loop is None:
            raise LoopNotYours("that loop is not yours")
        if loop.status == LoopStatus.FINISHED:
            raise LoopError("this loop is already finished")
        card = scorecards.scorecard_compute(loop, now)
        updated = Loop.objects.filter(pk=loop.pk, status=LoopStatus.ACTIVE).update(
            status=LoopStatus.FINISHED,
            finished_at=now,
            rating=card["rating"],
            overall_score=card["overall"],
            scorecard=card,
        )
        if updated != 1:
            raise LoopError("this loop is already finished")
        loop.refresh_from_db()
    return loop
