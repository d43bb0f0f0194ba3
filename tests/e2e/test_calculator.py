"""The capacity calculator in a real browser: a changed field redraws the numbers and the chart."""

from __future__ import annotations

from playwright.sync_api import expect

from interview.design.calculator import calculate
from tests.e2e.conftest import screenshot_path

# Pixels of the predicted line's colour (design.js draws it #0b5cad).
COUNT_PREDICTED_PIXELS = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === 11 && data[i + 1] === 92 && data[i + 2] === 173) count += 1;
  }
  return count;
}"""


def chart_state(page) -> dict:
    canvas = page.locator("#throughput-chart")
    box = canvas.bounding_box()
    return {
        "width": box["width"],
        "height": box["height"],
        "line_pixels": canvas.evaluate(COUNT_PREDICTED_PIXELS),
        "first_point": page.evaluate(
            "Math.round(Chart.getChart('throughput-chart').data.datasets[0].data[0])"
        ),
    }


def test_changing_the_model_redraws_numbers_and_chart(live_stack, page):
    page.goto(f"{live_stack.base_url}/design/calculator")
    first = chart_state(page)
    assert first["line_pixels"] > 100
    with page.expect_response(lambda r: "/design/calculator?" in r.url):
        page.select_option("select[name=model]", "smollm2-135m")
    # A locator assertion, not a string predicate: the page's CSP forbids eval, which
    # Playwright's polling of a string expression needs once the first check fails.
    expect(page.locator("#calculator-result h2")).to_contain_text("SmolLM2")
    page.wait_for_timeout(300)  # htmx settles 20 ms after the swap
    after = chart_state(page)
    page.screenshot(path=screenshot_path("calculator-after-change"), full_page=True)
    # The form's other fields keep their defaults: 1 H100, TP 1, bf16, batch 32, 4,096 tokens.
    expected = calculate("smollm2-135m", "h100-sxm", 1, 1, "bf16", "bf16", 32, 4096)
    # The chart was redrawn for the new model, at its laid-out size, with its line on it.
    assert after["first_point"] == round(expected.sweep[0].output_tokens_per_s)
    assert after["first_point"] != first["first_point"]
    assert (after["width"], after["height"]) == (first["width"], first["height"])
    assert after["line_pixels"] > 100


MEMBAR_SHARES = """() => [...document.querySelectorAll('.membar .seg')].map((seg) => ({
  share: Number(seg.dataset.share),
  width: seg.getBoundingClientRect().width,
  bar: seg.parentElement.getBoundingClientRect().width,
}))"""


def test_the_memory_bar_is_drawn_to_its_shares_under_the_content_security_policy(live_stack, page):
    """The segments' widths come from their data-share through design.js (the policy refuses
    style attributes), on the first load and after a change swaps the result in."""
    refused: list[str] = []
    page.on("console", lambda m: m.type == "error" and refused.append(m.text))
    page.goto(f"{live_stack.base_url}/design/calculator")
    _assert_segments_follow_shares(page)
    with page.expect_response(lambda r: "/design/calculator?" in r.url):
        page.select_option("select[name=model]", "smollm2-135m")
    # A locator assertion, not a string predicate: the page's CSP forbids eval, which
    # Playwright's polling of a string expression needs once the first check fails.
    expect(page.locator("#calculator-result h2")).to_contain_text("SmolLM2")
    page.wait_for_timeout(300)  # htmx settles 20 ms after the swap
    _assert_segments_follow_shares(page)
    assert refused == []


def _assert_segments_follow_shares(page) -> None:
    segments = page.evaluate(MEMBAR_SHARES)
    assert len(segments) >= 2 and sum(s["share"] for s in segments) > 99
    for segment in segments:
        assert abs(segment["width"] - segment["bar"] * segment["share"] / 100) < 2, segment
