"""A person opens the site, logs in, and sees who they are."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from tests.e2e.conftest import screenshot_path


def test_log_in_from_the_home_page(live_stack, page):
    get_user_model().objects.create_user("ada", password="correct-horse-battery")
    page.goto(live_stack.base_url + "/")
    assert "Practise the inference-engineer interview" in page.inner_text("main")
    page.get_by_role("navigation").get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_stack.base_url + "/")
    assert page.inner_text(".who") == "ada"
    page.screenshot(path=str(screenshot_path("01-home-logged-in")), full_page=True)
