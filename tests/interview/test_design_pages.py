"""Design pages through real HTTP: the calculator, and a design round answered end to end, on
its own and inside a mock-interview loop."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from engine import capacity
from interview.design import load_design_prompts, numeric_answer, render
from interview.design.calculator import calculate
from interview.design.practice import MAX_ANSWER_CHARS
from interview.judging import AnswerTarget, target_judge
from interview.models import Loop, RoundKind
from interview.scorecard import design_round_score
from tests.interview.conftest import clock_back

PROMPT_ID = "platform-100k-rps"
PROMPT = next(p for p in load_design_prompts() if p.id == PROMPT_ID)
SESSION_KEY = f"design-attempt:{PROMPT_ID}"
CALC = "/design/calculator"
PAGE = f"/design/{PROMPT_ID}/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def calc_query(**overrides) -> dict[str, str]:
    query = {
        "model": "llama-3-8b", "gpu": "h100-sxm", "gpus": "2", "tp": "1", "dtype": "bf16",
        "kv_dtype": "bf16", "batch": "64", "context": "4096",
    }  # fmt: skip
    return query | overrides


def chart_data(html: str) -> dict:
    match = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', html)
    assert match, "no chart data in the page"
    return json.loads(match.group(1))


# ---------------------------------------------------------------- calculator


def test_calculator_shows_the_capacity_models_numbers(client):
    response = client.get(CALC, calc_query())
    assert response.status_code == 200
    html = response.content.decode()
    e = capacity.estimate(
        capacity.MODELS["llama-3-8b"], capacity.GPUS["h100-sxm"], 2, 1, "bf16", "bf16", 64, 4096
    )
    assert e.kv_bytes_per_token == 131_072
    assert "131,072 bytes" in html
    assert f"{e.max_concurrent_sequences:,} per replica" in html
    assert f"{e.prefill_ms:.2f} ms" in html
    assert f"{e.decode_step_ms:.3f} ms, memory-bound" in html
    assert f"{e.output_tokens_per_s:,.0f} tokens/s" in html
    for assumption in e.assumptions[:3]:
        assert assumption.replace("'", "&#x27;") in html
    assert 'src="/static/vendor/htmx/htmx.min.js"' in html
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html
    assert "cdn" not in html.lower()


def test_calculator_chart_is_the_batch_sweep_with_the_roofline(client):
    html = client.get(CALC, calc_query(), **HTMX).content.decode()
    assert "<html" not in html  # htmx gets the fragment only
    data = chart_data(html)
    calc = calculate("llama-3-8b", "h100-sxm", 2, 1, "bf16", "bf16", 64, 4096)
    assert data["batches"] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert data["predicted"] == [round(p.output_tokens_per_s, 1) for p in calc.sweep]
    assert data["roofline"] == [round(p.roofline_tokens_per_s, 1) for p in calc.sweep]
    assert all(p <= r for p, r in zip(data["predicted"], data["roofline"], strict=True))
    assert data["max_batch"] == calc.estimate.max_concurrent_sequences


def test_calculator_memory_breakdown_adds_up_to_the_card(client):
    calc = calculate("llama-3-70b", "a100-80gb", 4, 4, "bf16", "bf16", 8, 8192)
    assert sum(s.bytes_per_gpu for s in calc.memory) == 80 * 10**9
    html = client.get(CALC, calc_query(model="llama-3-70b", gpu="a100-80gb", gpus="4", tp="4"))
    assert "KV cache" in html.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tp": "3"}, "tp=3 does not divide llama-3-8b"),
        ({"gpus": "2", "tp": "4"}, "tp=4 must divide gpus=2"),
        ({"gpus": "abc"}, "Enter a whole number."),
        ({"batch": "0"}, "greater than or equal to 1"),
        ({"context": "99999999"}, "less than or equal to 1048576"),
        ({"model": "gpt-5"}, "Select a valid choice."),
        ({"kv_dtype": "int4"}, "Select a valid choice."),
    ],
    ids=["tp-heads", "tp-gpus", "not-a-number", "zero-batch", "huge-context", "model", "kv"],
)
def test_calculator_bad_input_is_a_form_error(client, overrides, message):
    for headers in ({}, HTMX):
        response = client.get(CALC, calc_query(**overrides), **headers)
        assert response.status_code == 400
        html = response.content.decode()
        assert 'role="alert"' in html and message in html
        assert "chart-data" not in html


def test_calculator_fills_unnamed_fields_with_defaults(client):
    response = client.get(CALC, {"model": "qwen2.5-7b"})
    assert response.status_code == 200
    assert "Qwen2.5 7B on 1 × NVIDIA H100 SXM 80GB" in response.content.decode()


def test_calculator_does_not_fit_says_so(client):
    html = client.get(CALC, calc_query(model="llama-3-70b", gpu="l4", gpus="1")).content.decode()
    assert "Does not fit" in html
    assert "weights (only 21.6 of 141.1 GB fit)" in html
    assert "chart-data" not in html  # no throughput to chart


# ---------------------------------------------------------------- a design round over HTTP


@pytest.fixture
def candidate(client, alice):
    client.force_login(alice)
    return client


def attempt_of(client) -> dict:
    return client.session[SESSION_KEY]


def shift_start(client, minutes: int) -> None:
    """Move this attempt's start back, as if `minutes` had passed on the server's clock."""
    session = client.session
    attempt = session[SESSION_KEY]
    started = datetime.fromisoformat(attempt["started_at"]) - timedelta(minutes=minutes)
    attempt["started_at"] = started.isoformat()
    session[SESSION_KEY] = attempt
    session.save()


def test_practice_needs_login_and_a_real_prompt(client, alice):
    assert client.get(PAGE).status_code == 302
    client.force_login(alice)
    assert client.get("/design/no-such-round/").status_code == 404
    index = client.get("/design/").content.decode()
    assert all(f"/design/{p.id}/" in index for p in load_design_prompts())


def test_design_round_end_to_end(candidate):
    page = candidate.get(PAGE)
    assert page.status_code == 200
    params = attempt_of(candidate)["params"]
    answers = {q.id: numeric_answer(q, params) for q in PROMPT.numeric}
    html = page.content.decode()
    for answer in answers.values():
        assert answer.question.replace("'", "&#x27;") in html
    assert f"{params['requests_per_s']:,}" in html

    kv = answers["kv-per-token"].value
    assert (
        kv == capacity.kv_bytes_per_token(capacity.model_spec(params["model"])).kv_bytes_per_token
    )
    form = {
        "numeric-kv-per-token": f"{kv:,.0f}",  # commas are fine
        "numeric-batch1-ceiling": repr(answers["batch1-ceiling"].value * 1.1),  # inside ±15%
        "numeric-fleet-size": repr(answers["fleet-size"].value * 2),  # outside ±30%
        "section-memory_model": (
            "Each sequence keeps its KV cache in GPU memory, about 128 KB per token for an 8B "
            "model. Paged attention stores the KV cache in fixed-size blocks so nothing is "
            "wasted on fragmentation."
        ),
        "section-throughput_model": "One GPU serves 20,000 tokens/s at batch 1.",
    }
    graded = candidate.post(PAGE, form)
    assert graded.status_code == 200
    result = attempt_of(candidate)["result"]
    numeric = {n["question_id"]: n for n in result["numeric"]}
    assert [numeric[q]["correct"] for q in ("kv-per-token", "batch1-ceiling", "fleet-size")] == [
        True, True, False,
    ]  # fmt: skip
    assert numeric["kv-per-token"]["value"] == kv
    assert numeric["fleet-size"]["value"] == answers["fleet-size"].value
    assert result["numeric_correct"] == 2

    html = graded.content.decode()
    assert "2 of 3" in html
    assert "Worked derivation" in html and "<strong>" in html  # **bold** rendered
    memory = next(s for s in result["sections"] if s["name"] == "memory_model")
    evidence = {p["point_id"]: p for p in memory["points"]}
    assert evidence["paged_kv"]["covered"]
    assert "fixed-size blocks" in evidence["paged_kv"]["sentence"]
    for point in memory["points"]:
        if point["rule"] == "embedding":
            assert point["similarity"] >= point["threshold"]
            assert f"{point['similarity']:.2f}" in html
    assert "Matched sentence" in html and "Threshold" in html
    throughput = next(s for s in result["sections"] if s["name"] == "throughput_model")
    assert throughput["roofline_flags"], "20k tok/s at batch 1 must break the bound"
    assert "Roofline:" in html
    unanswered = next(s for s in result["sections"] if s["name"] == "observability")
    assert unanswered["score"] == 0 and not unanswered["answered"]

    again = candidate.post(PAGE, form | {"numeric-fleet-size": "1"})
    assert attempt_of(candidate)["result"] == result  # graded once
    assert again.status_code == 200


def test_bad_numbers_are_form_errors_and_nothing_is_graded(candidate):
    candidate.get(PAGE)
    response = candidate.post(PAGE, {"numeric-kv-per-token": "lots", "section-observability": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "enter a number" in html and 'aria-invalid="true"' in html
    assert 'value="lots"' in html
    assert attempt_of(candidate)["result"] is None
    too_long = candidate.post(PAGE, {"section-observability": "x" * (MAX_ANSWER_CHARS + 1)})
    assert too_long.status_code == 400 and "at most 6,000 characters" in too_long.content.decode()
    assert attempt_of(candidate)["result"] is None


def test_follow_ups_come_on_the_servers_schedule(candidate):
    candidate.get(PAGE)
    first, second = PROMPT.follow_ups
    early = candidate.get(f"/design/{PROMPT_ID}/follow-ups?after=0", **HTMX).content.decode()
    assert first.id not in early and "2 more follow-ups to come" in early
    refused = candidate.post(f"/design/{PROMPT_ID}/follow-ups/{first.id}", {"text": "x"}, **HTMX)
    assert refused.status_code == 409
    assert attempt_of(candidate)["follow_ups"] == {}

    shift_start(candidate, first.after_minutes)
    released = candidate.get(f"/design/{PROMPT_ID}/follow-ups?after=0", **HTMX).content.decode()
    assert f"follow-up-{first.id}" in released and f"follow-up-{second.id}" not in released
    assert "after=1" in released and 'hx-trigger="every 5s"' in released

    answer = (
        "Quantize the weights to FP8, which halves the bytes each decode step reads. "
        "Shed the excess with admission control: reply 429 with Retry-After when full."
    )
    graded = candidate.post(f"/design/{PROMPT_ID}/follow-ups/{first.id}", {"text": answer}, **HTMX)
    assert graded.status_code == 200
    stored = attempt_of(candidate)["follow_ups"][first.id]
    evidence = {p["point_id"]: p for p in stored["points"]}
    assert evidence["quantization"]["covered"] and evidence["admission_control"]["covered"]
    assert stored["coverage"] == pytest.approx(
        sum(p["weight"] for p in stored["points"] if p["covered"])
        / sum(p["weight"] for p in stored["points"])
    )
    assert stored["score"] == pytest.approx(
        target_judge(AnswerTarget(design=PROMPT_ID, follow_up=first.id), answer).grade.score
    )
    html = graded.content.decode()
    assert "Matched sentence" in html and "Quantize the weights" in html

    shift_start(candidate, second.after_minutes - first.after_minutes)
    rest = candidate.get(f"/design/{PROMPT_ID}/follow-ups?after=1", **HTMX).content.decode()
    assert f"follow-up-{second.id}" in rest and f"follow-up-{first.id}" not in rest
    assert "every 5s" not in rest  # all released: polling stops


def test_submitting_the_design_releases_the_remaining_follow_ups(candidate):
    candidate.get(PAGE)
    candidate.post(PAGE, {"section-observability": "We alert on TTFT and TPOT percentiles."})
    html = candidate.get(f"/design/{PROMPT_ID}/follow-ups?after=0", **HTMX).content.decode()
    assert all(f"follow-up-{f.id}" in html for f in PROMPT.follow_ups)


def test_new_numbers_restart_the_round(candidate):
    candidate.get(PAGE)
    shift_start(candidate, 30)
    before = attempt_of(candidate)["started_at"]
    assert candidate.post(f"/design/{PROMPT_ID}/new").status_code == 302
    candidate.get(PAGE)
    after = attempt_of(candidate)
    assert after["started_at"] > before and after["result"] is None
    assert datetime.fromisoformat(after["started_at"]) <= timezone.now()


# ---------------------------------------------------------------- a loop's design round over HTTP


def test_a_loops_design_round_end_to_end(candidate, alice):
    """The standalone round's form, follow-ups and evidence, inside a timed loop."""
    candidate.post("/loops/start/", {"level": "senior", "length_min": "30"})
    loop = Loop.objects.get(user=alice)
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    prompt = next(p for p in load_design_prompts() if p.id == design.design_id)
    params = design.design["params"]
    first, second = prompt.follow_ups
    page_url = f"/loops/{loop.pk}/rounds/{design.position}/"
    follow_ups = f"/loops/{loop.pk}/rounds/{design.position}/follow-ups"

    page = candidate.get(page_url).content.decode()
    design.refresh_from_db()
    assert design.deadline - design.started_at == timedelta(minutes=10)
    for question in prompt.numeric:
        assert numeric_answer(question, params).question.replace("'", "&#x27;") in page
    assert f'data-socket="/ws/loops/rounds/{design.pk}/follow-ups/"' in page
    assert "2 more follow-ups to come" in page and 'src="/static/js/design_round.js"' in page
    assert "every 5s" not in page  # pushed over the socket, not polled

    early = candidate.get(f"{follow_ups}?after=0", **HTMX).content.decode()
    assert f'id="follow-up-{first.id}"' not in early
    for follow_up_id in (first.id, "no-such-follow-up"):
        refused = candidate.post(f"{follow_ups}/{follow_up_id}", {"text": "Early."}, **HTMX)
        assert refused.status_code == 409
    design.refresh_from_db()
    assert design.follow_ups == {}

    # The first follow-up comes at its share of the 10-minute round.
    clock_back(design, first.after_minutes * 10 / prompt.minutes)
    released = candidate.get(f"{follow_ups}?after=0", **HTMX).content.decode()
    assert f'id="follow-up-{first.id}"' in released
    assert f'id="follow-up-{second.id}"' not in released
    assert f'data-url="{follow_ups}?after=1"' in released and "hx-trigger" not in released
    too_long = "x" * (MAX_ANSWER_CHARS + 1)
    refused = candidate.post(f"{follow_ups}/{first.id}", {"text": too_long}, **HTMX)
    assert refused.status_code == 400 and "at most 6,000 characters" in refused.content.decode()
    design.refresh_from_db()
    assert design.follow_ups == {}
    text = " ".join(p.text for p in first.rubric.points)
    graded = candidate.post(f"{follow_ups}/{first.id}", {"text": text}, **HTMX)
    assert graded.status_code == 200
    assert "Answer recorded" in graded.content.decode()
    assert "Matched sentence" not in graded.content.decode()  # the grade waits for the scorecard
    design.refresh_from_db()
    stored = design.follow_ups[first.id]
    assert stored["answer"] == text and not stored["late"]
    assert all(p["covered"] and p["sentence"] for p in stored["points"])

    # A number that does not parse: nothing is graded and the answers come back with the error.
    sections = {
        "section-throughput_model": "An 8B model on one H100 serves 20,000 tokens/s at batch 1.",
        "section-observability": "We alert on p99 TTFT and on queue depth.",
    }
    bad = candidate.post(
        f"{page_url}submit/", sections | {f"numeric-{prompt.numeric[0].id}": "lots"}
    )
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "enter a number" in html and 'value="lots"' in html
    assert "We alert on p99 TTFT and on queue depth." in html
    design.refresh_from_db()
    assert design.submitted_at is None and design.feedback == {}

    numbers = {f"numeric-{q.id}": repr(numeric_answer(q, params).value) for q in prompt.numeric}
    assert candidate.post(f"{page_url}submit/", numbers | sections).status_code == 302
    design.refresh_from_db()
    result = design.feedback
    assert design.submitted_at and not design.late
    assert result["numeric_correct"] == len(prompt.numeric)
    throughput = next(s for s in result["sections"] if s["name"] == "throughput_model")
    assert throughput["roofline_flags"][0]["claimed_tokens_per_s"] == 20_000
    page = candidate.get(page_url).content.decode()
    assert "Design submitted" in page and "more follow-up" not in page
    assert f'id="follow-up-{second.id}"' in page  # the answer released the rest

    plain = candidate.post(f"{follow_ups}/{second.id}", {"text": "We would shed load early."})
    assert (plain.status_code, plain.url) == (302, page_url)

    assert candidate.post(f"/loops/{loop.pk}/finish/").status_code == 302
    loop.refresh_from_db()
    design.refresh_from_db()
    [row] = [r for r in loop.scorecard["rounds"] if r["kind"] == "design"]
    assert row["score"] == design.score
    assert design.score == design_round_score(prompt, design.feedback, design.follow_ups)
    card = candidate.get(f"/loops/{loop.pk}/scorecard/").content.decode()
    assert "Matched sentence" in card and "Threshold" in card
    assert "Roofline:" in card and "exceeds the" in card
    for follow_up in prompt.follow_ups:
        assert f"Follow-up: {render(follow_up.prompt, params)}".replace("'", "&#x27;") in card
    for point in stored["points"]:
        assert f"{point['similarity']:.2f}" in card and f"{point['threshold']:.2f}" in card


def test_a_loops_design_round_is_its_owners_alone(client, alice, bob):
    client.force_login(alice)
    client.post("/loops/start/", {"level": "senior", "length_min": "30"})
    loop = Loop.objects.get(user=alice)
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    prompt = next(p for p in load_design_prompts() if p.id == design.design_id)
    follow_ups = f"/loops/{loop.pk}/rounds/{design.position}/follow-ups"
    client.force_login(bob)
    assert client.get(f"{follow_ups}?after=0").status_code == 404
    answer = client.post(f"{follow_ups}/{prompt.follow_ups[0].id}", {"text": "Mine now."})
    assert answer.status_code == 404
    submit = client.post(f"/loops/{loop.pk}/rounds/{design.position}/submit/", {})
    assert submit.status_code == 404
    design.refresh_from_db()
    assert (design.follow_ups, design.submitted_at) == ({}, None)


def test_a_design_submitted_before_its_page_was_opened_gets_its_errors(candidate, alice, bank):
    candidate.post("/loops/start/", {"level": "senior", "length_min": "30"})
    design = Loop.objects.get(user=alice).rounds.get(kind=RoundKind.DESIGN)
    assert design.position > 0 and design.started_at is None
    prompt = next(p for p in load_design_prompts() if p.id == design.design_id)
    response = candidate.post(
        f"/loops/{design.loop_id}/rounds/{design.position}/submit/",
        {f"numeric-{prompt.numeric[0].id}": "lots"},
    )
    assert response.status_code == 400 and "enter a number" in response.content.decode()
    design.refresh_from_db()
    assert design.started_at is not None and design.submitted_at is None
