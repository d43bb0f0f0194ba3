"""A mock loop's design round in the browser: a follow-up pushed over the WebSocket while the
round runs, answered in place, then the design submitted and the evidence read on the
scorecard (matched sentence, similarity and threshold per point, a roofline flag)."""

from __future__ import annotations

import json
import random

from playwright.sync_api import expect

from interview import services
from interview.design import load_design_prompts, numeric_answer
from interview.models import Loop, RoundKind
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import log_in
from tests.interview.conftest import clock_back

# The first follow-up comes this long after the page opens: long enough to see the round
# without it, short enough for a test. The server's timer, not the page, releases it.
FOLLOW_UP_IN_S = 4
PUSH_TIMEOUT_MS = 30_000
GRADING_TIMEOUT_MS = 90_000


def test_a_follow_up_is_pushed_into_a_loops_design_round(live_stack, page):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    pushed: list[dict] = []
    page.on(
        "websocket",
        lambda socket: (
            socket.on("framereceived", lambda frame: pushed.append(json.loads(frame)))
            if "/ws/loops/rounds/" in socket.url
            else None
        ),
    )
    log_in(live_stack, page, "lovelace", "pw-lovelace-design-1")
    user = Loop._meta.get_field("user").related_model.objects.get(username="lovelace")
    # No question bank and no coding problems in this database: the loop is its design round.
    loop = services.loop_start(user=user, level="senior", length_min=30, rng=random.Random(3))
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    prompt = next(p for p in load_design_prompts() if p.id == design.design_id)
    first, second = prompt.follow_ups
    scaled_min = first.after_minutes * 10 / prompt.minutes
    design = clock_back(design, scaled_min - FOLLOW_UP_IN_S / 60)

    page.goto(f"{live_stack.base_url}/loops/{loop.pk}/rounds/{design.position}/")
    expect(page.get_by_role("heading", name="Follow-ups")).to_be_visible()
    assert page.locator("#follow-up-poll").inner_text().startswith("2 more follow-ups to come")
    assert page.locator("article.follow-up").count() == 0
    page.evaluate("window.sameDocument = true")
    page.screenshot(path=str(screenshot_path("60-design-loop-round")), full_page=True)

    arrived = page.locator(f"#follow-up-{first.id}")
    arrived.wait_for(timeout=PUSH_TIMEOUT_MS)
    assert page.evaluate("window.sameDocument") is True  # pushed in, not a reload
    assert [(m["kind"], m["id"], m["pending"]) for m in pushed] == [("follow-up", first.id, 1)]
    assert pushed[0]["prompt"] in arrived.inner_text()
    assert page.locator("#follow-up-poll").inner_text().startswith("1 more follow-up to come")
    arrived.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_path("61-design-loop-follow-up-pushed")), full_page=True)

    # From here the server grades with the sentence-embedding model, loading it on first use:
    # most of a minute on a loaded two-core machine.
    page.set_default_timeout(GRADING_TIMEOUT_MS)
    arrived.get_by_label("Your answer").fill(
        "Quantize the weights to FP8, which halves the bytes every decode step reads. "
        "Shed the excess with admission control: answer 429 with Retry-After when full."
    )
    arrived.get_by_role("button", name="Answer the follow-up").click()
    page.locator(f"#follow-up-{first.id} .recorded").wait_for()
    design.refresh_from_db()
    assert design.follow_ups[first.id]["answered"]

    params = design.design["params"]
    for question in prompt.numeric:
        page.locator(f"#n-{question.id}").fill(repr(numeric_answer(question, params).value))
    page.locator("#s-throughput_model").fill(
        "One H100 serves an 8B model at 20,000 tokens/s at batch 1. "
        "Decode is memory-bandwidth bound, so we batch with continuous batching."
    )
    page.locator("#s-memory_model").fill(
        "The KV cache costs 2 × layers × KV heads × head dim × bytes per token, and paged "
        "attention keeps it in fixed-size blocks."
    )
    page.get_by_role("button", name="Submit the design").click()
    page.get_by_text("Design submitted").wait_for()
    # The answer released the second follow-up at once, in the page the submit returned to.
    expect(page.locator(f"#follow-up-{second.id}")).to_be_visible()

    page.get_by_role("button", name="Finish the loop").click()
    page.get_by_role("heading", name="Scorecard").wait_for()
    evidence = page.locator(f"#design-round-{design.position}")
    expect(evidence.get_by_role("heading", name="the evidence")).to_be_visible()
    throughput = evidence.locator(f"#design-{design.position}-section-throughput_model")
    assert "Roofline:" in throughput.inner_text()
    assert "exceeds the memory-bandwidth bound" in throughput.inner_text()
    answered = evidence.locator(f"#design-{design.position}-follow-up-{first.id}")
    rows = answered.locator("table.evidence").first.locator("tbody tr")
    stored = {p["point_id"]: p for p in design.follow_ups[first.id]["points"]}
    assert rows.count() == len(stored)
    for row, point in zip(rows.all(), stored.values(), strict=True):
        cells = row.locator("td").all_inner_texts()
        assert cells[2] == (f"“{point['sentence']}”" if point["sentence"] else "—")
        assert cells[3:5] == [f"{point['similarity']:.2f}", f"{point['threshold']:.2f}"]
    answered.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_path("62-design-loop-scorecard-evidence")), full_page=True)
    assert errors == []  # no script failed on any page
