"""No 500s from bad input: every text field of every form and API operation refuses a NUL
character with a 4xx naming the field (PostgreSQL stores no NUL in text: run these on it),
and numbers, event ids and bodies that break a rule are refused the same way."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from grader.bank import problems_load
from grader.models import Submission
from interview import services
from interview.models import Attempt, Level, Question, ReviewCard
from interview.question_bank import questions_load

NUL_TEXT = "nul\x00here"
# Pages the crawl must not follow: they end the session, leave the site or are not ours.
NOT_CRAWLED = ("/accounts/logout/", "/admin/", "/api/", "/static/")
# Enough pages to reach every kind of form (practice, loop rounds, review, design, lab,
# profile, problems) without walking all of the bank's questions.
MAX_PAGES = 120
# Fields whose value a person or a page sets as free text (selects and numbers included: a
# request can carry any text in them); boxes and buttons carry fixed values.
FIXED_INPUT_TYPES = {"checkbox", "radio", "submit", "button", "file", "image", "reset"}


class _Forms(HTMLParser):
    """The links and forms of one page: each form's action, method and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        elif tag == "form":
            self.forms.append(
                {
                    "action": attributes.get("action") or "",
                    "method": (attributes.get("method") or "get").lower(),
                    "fields": {},
                    "text": set(),
                }
            )
        elif tag in ("input", "textarea", "select") and self.forms and attributes.get("name"):
            form = self.forms[-1]
            name = attributes["name"]
            kind = attributes.get("type") if tag == "input" else tag
            if kind in ("checkbox", "radio") and name in form["fields"]:
                return
            form["fields"][name] = attributes.get("value") or ("1" if tag == "select" else "")
            if kind not in FIXED_INPUT_TYPES:
                form["text"].add(name)


def _crawl(browser: Client) -> list[tuple[str, dict]]:
    """Every form on the pages reachable from the dashboard, with the page it is on."""
    seen, queue, forms = set(), ["/"], []
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        reply = browser.get(path)
        if reply.status_code != 200 or "text/html" not in reply["Content-Type"]:
            continue
        page = _Forms()
        page.feed(reply.content.decode())
        forms += [(path, form) for form in page.forms]
        for link in page.links:
            target = urlsplit(link)
            if target.netloc or not target.path.startswith("/"):
                continue
            if not target.path.startswith(NOT_CRAWLED) and target.path not in seen:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return forms


@pytest.fixture
def signed_in(transactional_db, alice) -> Client:
    """Alice with the whole bank, a mock loop started and a review card due."""
    questions_load()
    problems_load()
    services.loop_start(user=alice, level=Level.MID, length_min=45)
    services.review_card_add(user=alice, question=Question.objects.get(bank_id="cb-what"))
    browser = Client()
    browser.force_login(alice)
    return browser


def test_a_nul_in_any_text_field_of_any_form_is_refused_naming_the_field(signed_in, alice):
    forms = _crawl(signed_in)
    # Guards against passing vacuously: the crawl reached the forms that take free text.
    actions = {form["action"] or page for page, form in forms}
    for expected in ("/answer/", "/profile/tokens/", "/review/", "/submit/", "/design/", "/lab/"):
        assert any(expected in action for action in actions), expected
    assert {"topic", "q", "text", "code", "name", "card", "position"} <= {
        field for _, form in forms for field in form["text"]
    }
    tried = set()
    for page, form in forms:
        action = form["action"] or page.split("?")[0]
        for field in sorted(form["text"]):
            if (action, form["method"], field) in tried:
                continue
            tried.add((action, form["method"], field))
            data = form["fields"] | {field: NUL_TEXT}
            send = signed_in.post if form["method"] == "post" else signed_in.get
            reply = send(action, data)
            assert reply.status_code == 400, (action, field, reply.status_code)
            assert f"{field}: must not contain a NUL character" in reply.content.decode()
    assert len(tried) >= 20


def _sample(schema: dict, components: dict) -> object:
    """A value the schema accepts, enough to reach the operation's code."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _sample(prop, components)
            for name, prop in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    if kind == "integer":
        return 1
    if kind == "array":
        return []
    return "cpu-softmax"


def _string_properties(schema: dict, components: dict) -> list[str]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return [
        name
        for name, prop in schema.get("properties", {}).items()
        if prop.get("type") == "string"
        or any(s.get("type") == "string" for s in prop.get("anyOf", []))
    ]


def test_a_nul_in_any_string_of_any_api_operation_is_refused_naming_it(signed_in, alice):
    from grader.access import api_token_create

    api = Client(headers={"Authorization": f"Bearer {api_token_create(alice, 'nul')[1]}"})
    document = api.get("/api/openapi.json").json()
    components = document["components"]["schemas"]
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body_schema = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            body = _sample(body_schema, components) if body_schema else None
            for parameter in operation.get("parameters", []):
                if parameter["schema"].get("type") == "string" or any(
                    s.get("type") == "string" for s in parameter["schema"].get("anyOf", [])
                ):
                    cases.append((method, path, parameter["in"], parameter["name"], body))
            for name in _string_properties(body_schema or {}, components):
                cases.append((method, path, "body", name, body))
    # Guards against passing vacuously: the document's free-text fields are all among them.
    assert {"code", "text", "username", "password", "name", "topic"} <= {c[3] for c in cases}
    for method, path, where, name, body in cases:
        url, query = path, {}
        if where == "path":
            url = path.replace("{" + name + "}", NUL_TEXT)
        elif where == "query":
            query = {name: NUL_TEXT}
        url = url.replace("{question_id}", "cb-what").replace("{slug}", "cpu-softmax")
        url = url.replace("{submission_id}", "1")
        payload = (body or {}) | ({name: NUL_TEXT} if where == "body" else {})
        if method == "get":
            reply = api.get(url, query)
        else:
            reply = api.generic(
                method.upper(),
                url + (f"?{name}={NUL_TEXT}" if where == "query" else ""),
                json.dumps(payload),
                content_type="application/json",
            )
        assert reply.status_code == 422, (method, path, name, reply.status_code)
        assert reply.json()["errors"][0] == {
            "field": "path" if where == "path" else name,
            "rule": "no_nul",
            "message": "must not contain a NUL character (\\x00)",
        }
    assert len(cases) >= 8


def test_a_nul_in_an_idempotency_key_is_refused_and_nothing_is_stored(signed_in, alice):
    from grader.access import api_token_create

    api = Client(headers={"Authorization": f"Bearer {api_token_create(alice, 'nul')[1]}"})
    reply = api.post(
        "/api/submissions",
        json.dumps({"problem": "cpu-softmax", "code": "x = 1"}),
        content_type="application/json",
        headers={"Idempotency-Key": "key\x00"},
    )
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not Submission.objects.exists()


@pytest.mark.parametrize(
    "value", ["abc", "", "99999999999999999999999", "\u0663", "\u00b2"],
    ids=["letters", "empty", "beyond-bigint", "arabic-indic-digit", "superscript"],
)  # fmt: skip
def test_a_review_card_that_is_no_number_is_400_naming_card(signed_in, value):
    reply = signed_in.post("/review/", {"card": value, "choice": "0"})
    assert reply.status_code == 400
    assert "card: must be a whole number" in reply.content.decode()
    reply = signed_in.post("/review/rate/", {"card": "1", "rating": value})
    assert reply.status_code == 400
    assert "rating: must be a whole number" in reply.content.decode()
    assert not ReviewCard.objects.filter(logs__isnull=False).exists()


def test_a_loop_answer_with_a_position_that_is_no_number_is_400_naming_position(signed_in, alice):
    """Every item of the round, whatever its kind: for some an empty answer is valid (a
    multiple choice left blank), which once stored it and redirected instead."""
    loop = alice.loops.get()
    items = list(loop.rounds.get(position=0).items.all())
    blank_is_an_answer = Question.objects.filter(type="multiple_choice").first()
    first = items[0]
    if not any(item.question.type == "multiple_choice" for item in items):
        first.question, first.option_order = blank_is_an_answer, []
        first.save(update_fields=["question", "option_order"])
    for item in items:
        reply = signed_in.post(f"/loops/{loop.pk}/items/{item.pk}/answer/", {"position": "abc"})
        assert reply.status_code == 400, item
        assert "position: must be a whole number" in reply.content.decode()
    assert not Attempt.objects.filter(loop_round__loop=loop).exists()


@pytest.mark.parametrize(
    "value", ["9" * 5000, "\u0663", "\u00b2", "-1", "99999999999999999999"],
    ids=["5000-digits", "arabic-indic-digit", "superscript", "negative", "beyond-bigint"],
)  # fmt: skip
def test_a_last_event_id_that_is_no_number_is_422_naming_it(signed_in, alice, value):
    from grader.access import api_token_create

    api = Client(headers={"Authorization": f"Bearer {api_token_create(alice, 'sse')[1]}"})
    submission = services_submission(alice)
    reply = api.get(f"/api/submissions/{submission.pk}/events", headers={"Last-Event-ID": value})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "Last-Event-ID"


def services_submission(user) -> Submission:
    from grader.models import Problem
    from grader.services import submission_create

    return submission_create(user=user, problem=Problem.objects.get(slug="cpu-softmax"), code="x=1")


@pytest.mark.parametrize("path", ["/api/submissions", "/api/auth/token"])
def test_an_api_body_over_the_limit_is_413_with_a_message(signed_in, path):
    too_big = json.dumps({"code": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    reply = signed_in.post(path, too_big, content_type="application/json")
    assert reply.status_code == 413
    error = reply.json()["errors"][0]
    assert error["field"] == "body" and error["rule"] == "max_size"
    assert "over 2.6 MB" in error["message"]


@pytest.mark.parametrize(
    "path", ["/api/submissions/99999999999999999999", "/loops/99999999999999999999/"]
)
def test_ids_beyond_the_database_range_are_not_found(signed_in, path):
    assert signed_in.get(path).status_code == 404
