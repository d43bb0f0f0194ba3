"""A whole mock loop played in the browser to its scorecard: every concept answer comes back
with what the person answered, the right answer and the explanation, and a design follow-up
answered just before pressing Finish is on the scorecard, not lost to the race with grading."""

from __future__ import annotations

import random
import re

from django.contrib.auth import get_user_model

from interview import services
from interview.models import LoopItem, RoundKind
from interview.question_bank import expected_number, number_format, questions_load
from interview.views import question_view_model
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import log_in

# Grading a written answer loads the sentence-embedding model on first use: most of a minute
# on a loaded two-core machine.
GRADING_TIMEOUT_MS = 120_000
SHORT_ANSWER = (
    "Static batching pads every prompt to the longest and holds the batch until its longest "
    "output ends, so finished slots sit idle while new requests queue."
)
FIRST_FOLLOW_UP = "Quantise the weights to FP8 to halve the bytes each decode step reads."
LAST_FOLLOW_UP = (
    "Shed load with admission control: answer 429 with Retry-After once the queue would break "
    "the TTFT target, and autoscale on queue depth with warm spares."
)


def _words(text: str) -> list[str]:
    """The words of a text or an HTML fragment, without tags or Markdown marks."""
    return re.sub(r"<[^>]+>|[`*_]", " ", text).split()


def _answer(page, item: LoopItem, right: bool) -> str:
    """Answers one concept item on the round page, right or wrong; returns what the scorecard
    must then show as the person's answer."""
    spec = item.question.spec
    row = page.locator(f"#item-{item.pk}")
    if spec["type"] in ("single_choice", "multiple_choice"):
        answers = spec["answer"] if spec["type"] == "multiple_choice" else [spec["answer"]]
        wrong = [i for i in range(len(spec["choices"])) if i not in answers]
        index = answers[0] if right else wrong[0]
        position = item.option_order.index(index) if item.option_order else index
        row.locator(f"#q{item.pk}-c{position}").check()
        shown = row.locator(f"label[for='q{item.pk}-c{position}']").inner_text()
        given = f"{shown} (your pick: {'right' if right else 'wrong'})"
    elif spec["type"] in ("numeric", "parametric"):
        value = expected_number(spec, item.params) * (1 if right else 3)
        given = number_format(value)
        row.get_by_label("Your answer").fill(given)
    else:
        given = SHORT_ANSWER
        row.get_by_label("Your answer").fill(given)
    row.get_by_role("button", name="Submit answer").click()
    page.locator(f"#item-{item.pk} .recorded").wait_for()
    return given


def test_the_scorecard_shows_every_answer_and_keeps_a_follow_up_answered_at_the_end(
    live_stack, page
):
    questions_load()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(live_stack, page, "hamming", "pw-hamming-scorecard-1")
    user = get_user_model().objects.get(username="hamming")
    loop = services.loop_start(user=user, level="senior", length_min=30, rng=random.Random(1))
    concepts = loop.rounds.get(kind=RoundKind.CONCEPTS)
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    items = list(
        LoopItem.objects.filter(round=concepts).select_related("question").order_by("position")
    )
    # This draw holds every shape of concept question: both choice kinds, a fixed and a
    # drawn number, and a written answer.
    types = {item.question.spec["type"] for item in items}
    assert types == {"single_choice", "multiple_choice", "numeric", "parametric", "short_answer"}

    page.goto(f"{live_stack.base_url}/loops/{loop.pk}/rounds/{concepts.position}/")
    page.set_default_timeout(GRADING_TIMEOUT_MS)
    given = {item.pk: _answer(page, item, right=n % 2 == 0) for n, item in enumerate(items)}
    page.screenshot(path=str(screenshot_path("70-loop-concepts-answered")), full_page=True)

    # The design round: submitting it releases every follow-up at once.
    page.goto(f"{live_stack.base_url}/loops/{loop.pk}/rounds/{design.position}/")
    page.locator("#s-throughput_model").fill(
        "Decode is memory-bandwidth bound: each step reads all the weights and the KV cache."
    )
    page.get_by_role("button", name="Submit the design").click()
    page.get_by_text("Design submitted").wait_for()
    first, last = page.locator("article.follow-up").all()
    first.get_by_label("Your answer").fill(FIRST_FOLLOW_UP)
    first.get_by_role("button", name="Answer the follow-up").click()
    page.locator("article.follow-up .recorded").first.wait_for()

    # The last follow-up is answered and Finish pressed at once, while it is still grading.
    last_id = last.get_attribute("id").removeprefix("follow-up-")
    last.get_by_label("Your answer").fill(LAST_FOLLOW_UP)
    last.get_by_role("button", name="Answer the follow-up").click()
    page.get_by_role("button", name="Finish the loop").click()
    page.get_by_role("heading", name="Scorecard").wait_for()
    assert dialogs == []  # nothing was pending, so Finish did not ask

    design.refresh_from_db()
    assert design.follow_ups[last_id]["answer"] == LAST_FOLLOW_UP
    kept = page.locator(
        f"#design-round-{design.position} #design-{design.position}-follow-up-{last_id}"
    )
    assert f"Your answer: {LAST_FOLLOW_UP}" in kept.inner_text()
    follow_ups = page.locator(f"#design-round-{design.position} section.follow-up")
    answers = [text for text in follow_ups.all_inner_texts() if "Your answer:" in text]
    assert len(answers) == 2 and FIRST_FOLLOW_UP in answers[0] + answers[1]

    for item in items:
        block = page.locator(f"#answer-{item.pk}")
        text = block.inner_text()
        spec = item.question.spec
        assert given[item.pk] in text, (item.question.bank_id, given[item.pk], text)
        expected = block.locator(".expected").inner_text()
        assert expected.startswith("Right answer:")
        if spec["type"] in ("single_choice", "multiple_choice"):
            answers = spec["answer"] if spec["type"] == "multiple_choice" else [spec["answer"]]
            right = block.locator(".right-choice").all_inner_texts()
            assert len(right) == len(answers)
            assert all("right answer" in choice for choice in right)
        elif spec["type"] in ("numeric", "parametric"):
            assert number_format(expected_number(spec, item.params)) in expected
        else:
            assert _words(spec["model_answer"])[:6] == _words(expected)[2:8]
        explanation = _words(question_view_model(item.question, item.params)["explanation"])
        assert explanation
        shown = _words(block.locator(".explanation").inner_text())
        assert shown[:8] == explanation[:8]
    page.screenshot(path=str(screenshot_path("71-loop-scorecard-feedback")), full_page=True)
    assert errors == []  # no script failed on any page
