"""Where the judge is not confident, the page says so and lets the candidate check their answer
against the rubric points and the model answer, the judge's evidence pre-ticked (issue 17,
item 3): practice answers and design sections, through Django's test client."""

from __future__ import annotations

import re

import pytest

from interview.judging import AnswerTarget, target_judge
from interview.rubric import VACUOUS_CAP

pytestmark = pytest.mark.django_db

# Makes the batching point only by a hair and leaves out why intensity matters: whether it
# reaches the pass mark is not decided.
UNSURE_DECODE = (
    "Prefill is compute heavy. Decode reads all weights from memory for every token, so it waits "
    "on memory, and batching more sequences raises its intensity."
)
SALAD = "Online softmax: running max, running sum, rescale, blocks, tiles, one pass."


def _token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def _answer(client, question_id: str, text: str) -> str:
    page = client.get(f"/practice/{question_id}/").content.decode()
    response = client.post(f"/practice/{question_id}/", {"text": text, "token": _token(page)})
    assert response.status_code == 200
    return response.content.decode()


def _ticked(html: str) -> dict[str, bool]:
    boxes = re.findall(
        r'<input type="checkbox" name="self-check-([\w-]+)" value="1"( checked)?>', html
    )
    return {point: bool(checked) for point, checked in boxes}


def test_an_unsure_practice_grade_asks_for_a_self_check(client, bank, alice):
    verdict = target_judge(AnswerTarget(question="pd-why-memory-bound"), UNSURE_DECODE)
    assert not verdict.grade.confident  # the case this test is about
    client.force_login(alice)
    html = _answer(client, "pd-why-memory-bound", UNSURE_DECODE)
    assert "the judge is not sure" in html
    assert "Correct — score" not in html and "Not quite — score" not in html
    assert _ticked(html) == {e.point_id: e.covered for e in verdict.grade.points}
    undecided = [e for e in verdict.grade.points if not e.decided]
    assert undecided and html.count("judge unsure") == len(undecided)
    assert "The model answer" in html and "ridge point" in html
    assert "js/self_check.js" in html


def test_a_confident_practice_grade_gives_its_score_and_no_self_check(client, bank, alice):
    verdict = target_judge(AnswerTarget(question="gk-online-softmax"), SALAD)
    assert verdict.grade.confident and verdict.grade.vacuous
    client.force_login(alice)
    html = _answer(client, "gk-online-softmax", SALAD)
    shown = re.search(r"Not quite — score (\d\.\d\d)", html)
    assert shown and float(shown.group(1)) <= VACUOUS_CAP
    assert "data-self-check" not in html and _ticked(html) == {}


PROMPT_ID = "tp2-vs-tp4"
UNSURE_THROUGHPUT = (
    "Decode is memory-bandwidth bound, so each step reads all the weights. Bigger batches raise "
    "throughput but make each step slower, raising TPOT. TP=2 gives more tokens/s for the node "
    "since TP=4 pays more all-reduce and throughput does not scale linearly."
)


def test_an_unsure_design_section_asks_for_a_self_check(client, alice):
    verdict = target_judge(
        AnswerTarget(design=PROMPT_ID, section="throughput_model"), UNSURE_THROUGHPUT
    )
    assert not verdict.grade.confident
    client.force_login(alice)
    page = f"/design/{PROMPT_ID}/"
    client.get(page)
    html = client.post(page, {"section-throughput_model": UNSURE_THROUGHPUT}).content.decode()
    section = html[html.index('id="section-throughput_model"') :]
    section = section[: section.index("</section>")]
    assert "check it yourself" in section and "the judge is not sure" in section
    assert _ticked(section) == {e.point_id: e.covered for e in verdict.grade.points}
    observability = html[html.index('id="section-observability"') :]
    assert "Score: <strong>0%</strong>" in observability[: observability.index("</section>")]


def test_a_practice_answer_names_its_sentence_that_goes_against_the_rubric(client, bank, alice):
    wrong = "Batching reduces decode's arithmetic intensity."
    text = (
        "Prefill runs all prompt tokens through each layer at once as large matrix multiplies, "
        "so it is compute-bound. Decode handles one token per sequence per step and must read "
        f"all the weights from HBM each time, so its arithmetic intensity is far below the ridge "
        f"point. {wrong}"
    )
    verdict = target_judge(AnswerTarget(question="pd-why-memory-bound"), text)
    assert verdict.grade.contradictions == (wrong,) and verdict.grade.confident
    client.force_login(alice)
    html = _answer(client, "pd-why-memory-bound", text)
    assert "goes against the rubric: “Batching reduces decode&#x27;s arithmetic intensity.”" in html
