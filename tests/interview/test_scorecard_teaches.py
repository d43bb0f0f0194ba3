"""The scorecard teaches: every concept answer with the right answer (on the numbers drawn for
it), the explanation and the source; every design number with its derivation."""

from __future__ import annotations

import html
import random
import re

import pytest

from interview import services
from interview.models import LoopItem, RoundKind
from interview.question_bank import expected_number, number_format
from interview.views import question_view_model
from tests.interview.conftest import right_answer, wrong_answer

pytestmark = pytest.mark.django_db


def _answer_block(page: str, item: LoopItem) -> str:
    match = re.search(
        rf'<li id="answer-{item.pk}" class="concept-answer">(.*?)</li>\s*(?=<li id="answer-|</ol>)',
        page,
        re.S,
    )
    assert match, f"no answer block for item {item.pk}"
    return html.unescape(match.group(1))


def _words(text: str) -> list[str]:
    """The words of a text or an HTML fragment, without tags or Markdown marks."""
    return re.sub(r"<[^>]+>|[`*_]", " ", text).split()


def _after(block: str, heading: str) -> str:
    return block.split(f"<h4>{heading}</h4>", 1)[1]


def test_every_concept_answer_shows_the_answer_the_right_answer_and_the_explanation(
    client, bank, alice
):
    loop = services.loop_start(user=alice, level="mid", length_min=30, rng=random.Random(3))
    items = list(LoopItem.objects.filter(round__loop=loop).select_related("question"))
    assert len(items) >= 3
    right, wrong, *unanswered = items
    services.answer_submit(
        user=alice,
        item_id=right.pk,
        data=right_answer(right.question, right.params, right.option_order),
    )
    services.answer_submit(
        user=alice,
        item_id=wrong.pk,
        data=wrong_answer(wrong.question, wrong.params, wrong.option_order),
    )
    services.loop_finish(user=alice, loop_id=loop.pk)
    client.force_login(alice)

    page = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()

    for item in items:
        block = _answer_block(page, item)
        spec = item.question.spec
        view = question_view_model(item.question, item.params)
        assert "Right answer:" in block
        if spec["type"] in ("numeric", "parametric"):
            assert number_format(expected_number(spec, item.params)) in block
        elif spec["type"] in ("single_choice", "multiple_choice"):
            assert "right answer</span>" in block
        else:
            assert spec["model_answer"].split()[0] in block
        explanation = _words(view["explanation"])[:8]
        assert _words(_after(block, "Explanation"))[: len(explanation)] == explanation
        assert f'href="{item.question.source_url}"' in block
        assert "{" not in re.sub(r"<[^>]+>", "", block)  # no raw placeholder
    assert "your pick:" in _answer_block(page, right) or "Your answer" in _answer_block(page, right)
    assert "Not quite" in _answer_block(page, wrong)
    for item in unanswered:
        assert "Not answered" in _answer_block(page, item)


def test_every_design_number_on_the_scorecard_shows_its_derivation(client, bank, alice):
    loop = services.loop_start(user=alice, level="senior", length_min=30, rng=random.Random(1))
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    services.round_submit(user=alice, round_id=design.pk, data={})
    services.loop_finish(user=alice, loop_id=loop.pk)
    client.force_login(alice)

    page = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()

    design.refresh_from_db()
    numbers = design.feedback["numeric"]
    assert numbers
    assert page.count("How it is derived") == len(numbers)
    for number in numbers:
        first_line = html.escape(number["derivation"].strip().splitlines()[0].replace("**", ""))
        assert first_line.split(" ")[0] in page
