"""Run (LeetCode's): a program's view through the API. The public examples and inputs of one's
own, judged on the trusted side by the worker's own function, with no grade recorded: no
score, no history, no leaderboard, no "solved", no editorial; refusals name the field and store
nothing; the submission limits count Runs too."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from grader import access, services
from grader.models import Problem, Submission
from tests.grader.conftest import solution

pytestmark = pytest.mark.usefixtures("fresh_buckets")

PUBLIC_EXAMPLES = ["small-float64", "neg-inf-rows", "length-one-rows"]


@pytest.fixture
def token(user) -> str:
    return access.api_token_create(user, "tests")[1]


def api(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def run(token: str, code: str, inputs: list | None = None, problem: str = "cpu-softmax"):
    body = {"problem": problem, "code": code} | ({"inputs": inputs} if inputs is not None else {})
    return api(token).post("/api/runs", data=json.dumps(body), content_type="application/json")


def run_done(token: str, code: str, inputs: list | None = None) -> dict:
    """Make a Run through the API, let the worker's function run it, read it back."""
    created = run(token, code, inputs)
    assert created.status_code == 201, created.content
    assert created.json()["state"] == "queued" and created.json()["examples"] == []
    services.submission_grade(created.json()["id"], attempt=0, hostname="run-test")
    return api(token).get(f"/api/runs/{created.json()['id']}").json()


def test_a_run_judges_the_public_examples_and_your_input_and_records_no_grade(
    softmax_problem, token, user
):
    done = run_done(token, solution("reference.py"), [{"values": [[1, 2, 3], [0, 0, "-inf"]]}])
    assert done["state"] == "graded" and done["verdict"] == "accepted"
    assert done["message"] == "4 of 4 examples passed"
    assert [e["name"] for e in done["examples"]] == [*PUBLIC_EXAMPLES, "your-input-1"]
    assert [e["custom"] for e in done["examples"]] == [False, False, False, True]
    assert {e["verdict"] for e in done["examples"]} == {"accepted"}
    mine = done["examples"][-1]["details"]
    softmax = np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum()
    assert mine["output"][0] == pytest.approx(softmax.tolist(), rel=1e-12)
    assert mine["output"][1] == pytest.approx([0.5, 0.5, 0.0])
    assert "score" not in done

    run_row = Submission.objects.get(pk=done["id"])
    assert (run_row.purpose, run_row.score, run_row.timing["candidate"]) == ("run", None, None)
    # Nothing of it counts as a grade: no history, no leaderboard, no "solved", no editorial.
    assert api(token).get("/api/submissions").json() == []
    assert api(token).get(f"/api/submissions/{done['id']}").status_code == 404
    assert api(token).get("/api/leaderboards/cpu-softmax").json() == []
    assert api(token).get("/api/problems/cpu-softmax").json()["editorial_md"] is None
    browser = Client()
    browser.force_login(user)
    assert "not solved yet" in browser.get("/problems/").content.decode()
    assert "The idea" not in browser.get("/problems/cpu-softmax/").content.decode()


def test_a_wrong_solution_gets_each_examples_verdict_and_a_short_diff(softmax_problem, token):
    done = run_done(token, solution("wrong/wrong_axis.py"), [{"values": [[1, 2, 3]]}])
    assert done["verdict"] == "wrong_answer"
    assert done["message"].startswith("0 of 4 examples passed; small-float64: ")
    first = done["examples"][0]
    assert first["verdict"] == "wrong_answer"
    mismatch = first["details"]["first_mismatches"][0]
    assert set(mismatch) == {"index", "got", "expected"}
    assert mismatch["got"] != pytest.approx(mismatch["expected"])
    # Over the first axis, each value of a one-row input is alone: all ones.
    assert done["examples"][-1]["verdict"] == "wrong_answer"
    assert done["examples"][-1]["details"]["first_mismatches"][0]["got"] == 1.0


def test_an_error_and_a_time_limit_are_the_examples_verdicts(softmax_problem, token):
    crash = run_done(token, "def softmax(x):\n    raise ValueError('boom')\n")
    assert crash["verdict"] == "runtime_error"
    assert "boom" in crash["examples"][0]["message"]
    Problem.objects.filter(pk=softmax_problem.pk).update(
        spec=softmax_problem.spec | {"limits": softmax_problem.spec["limits"] | {"test_time_s": 1}}
    )
    slow = run_done(token, "import time\n\ndef softmax(x):\n    time.sleep(30)\n")
    assert slow["verdict"] == "time_limit"
    assert slow["examples"][0]["verdict"] == "time_limit"


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        ([{"values": [[1, 2], [3]]}], "every row needs the same number of values"),
        ([{"values": [["-inf", "-inf"]]}], "the expected output is not finite"),
        ([{"values": [[1.0] * 4097]}], "at most 4,096 values"),
        ([{"values": [[1]], "dtype": "int8"}], "dtype is one of float32, float64"),
        ([{"values": [[1]]}] * 6, "at most 5 inputs of your own"),
    ],
    ids=["ragged", "undefined-output", "too-many-values", "dtype", "too-many"],
)
def test_malformed_inputs_are_422_naming_the_input_and_nothing_is_stored(
    softmax_problem, token, inputs, says
):
    refused = run(token, solution("reference.py"), inputs)
    assert refused.status_code == 422
    assert says in refused.json()["detail"] and refused.json()["detail"].startswith("inputs:")
    assert not Submission.objects.exists()


def test_unknown_problems_oversized_code_and_inputs_a_kind_takes_none_of_are_refused(
    softmax_problem, token
):
    assert run(token, "x = 1", problem="no-such-problem").status_code == 404
    limit = softmax_problem.spec["limits"]["source_bytes"]
    huge = run(token, "#" * (limit + 1))
    assert huge.status_code == 422 and "code" in json.dumps(huge.json())
    Problem.objects.create(
        slug="toy-allocator",
        title="Toy",
        statement_md="",
        harness="allocator",
        entry_point="PagedAllocator",
        starter_code="",
        reference_code="",
        oracle_code="",
        spec={"tests": [{"name": "t"}], "benchmark": {}},
        published=True,
    )
    none = run(token, "x = 1", [{"values": [[1]]}], problem="toy-allocator")
    assert none.status_code == 422
    assert "takes no inputs of your own" in none.json()["detail"]
    assert not Submission.objects.exists()


def test_the_pages_run_refuses_bad_input_saying_why_and_stores_nothing(softmax_problem, user):
    page = Client()
    page.force_login(user)

    def page_run(text: str):
        form = {"code": solution("reference.py"), "input": text, "input_dtype": "float64"}
        return page.post("/problems/cpu-softmax/run/", form, headers={"Accept": "application/json"})

    for text, says in [
        ("[[1, 2", "your input is not JSON"),
        ('[[1, "x"]]', "'x' is not a number"),
        ("[1, 2, 3]", "values is a list of rows"),
    ]:
        refused = page_run(text)
        assert refused.status_code == 400 and says in refused.json()["error"], text
    not_json = api(access.api_token_create(user, "t")[1]).post(
        "/api/runs",
        data=json.dumps(
            {"problem": "cpu-softmax", "code": "x = 1", "inputs": [{"values": [[1, "x"]]}]}
        ),
        content_type="application/json",
    )
    assert not_json.status_code == 422 and "inputs" in json.dumps(not_json.json())
    assert not Submission.objects.exists()
    made = page_run("[[1, 2, 3]]")
    assert made.status_code == 201
    assert Submission.objects.get().run_inputs == [{"values": [[1, 2, 3]], "dtype": "float64"}]


def test_runs_and_submissions_share_the_pending_cap(softmax_problem, token):
    for attempt in range(access.MAX_PENDING_PER_USER):
        assert run(token, f"# {attempt}\n" + solution("reference.py")).status_code == 201
    over = api(token).post(
        "/api/submissions",
        data=json.dumps({"problem": "cpu-softmax", "code": solution("reference.py")}),
        content_type="application/json",
    )
    assert over.status_code == 429 and over.json()["errors"][0]["rule"] == "max_pending"
    assert run(token, solution("reference.py")).status_code == 429
    assert Submission.objects.count() == access.MAX_PENDING_PER_USER


def test_someone_elses_run_is_404(softmax_problem, token, django_user_model):
    created = run(token, solution("reference.py")).json()
    other = django_user_model.objects.create_user("other", password="pw-other-1")
    other_token = access.api_token_create(other, "t")[1]
    assert api(other_token).get(f"/api/runs/{created['id']}").status_code == 404
    assert api(token).get(f"/api/runs/{created['id']}").status_code == 200


def test_manage_py_grade_run_tries_the_examples_without_a_worker(softmax_problem, capsys):
    with pytest.raises(SystemExit) as exit_status:
        call_command(
            "grade", "--problem", "cpu-softmax", "--reference", "--run", "--json",
            "--input", '{"values": [[2, 2]], "dtype": "float32"}',
        )  # fmt: skip
    assert exit_status.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["verdict"], report["score"]) == ("accepted", None)
    assert [t["name"] for t in report["tests"]] == [*PUBLIC_EXAMPLES, "your-input-1"]
    with pytest.raises(CommandError, match="--input: input 1: dtype is one of"):
        call_command(
            "grade", "--problem", "cpu-softmax", "--reference", "--run",
            "--input", '{"values": [[2, 2]], "dtype": "int8"}',
        )  # fmt: skip


def test_a_run_lost_with_its_workers_ends_unscored_and_a_regrade_leaves_runs_alone(
    softmax_problem, user, monkeypatch
):
    monkeypatch.setattr(services, "_enqueue", lambda submission, countdown_s=0: None)
    lost = services.submission_create(
        user=user, problem=softmax_problem, code="x = 1\n", purpose="run"
    )
    for attempt in range(services.MAX_ATTEMPTS):
        Submission.objects.filter(pk=lost.pk).update(
            state="running", attempt=attempt, heartbeat_at=timezone.now() - timedelta(seconds=60)
        )
        assert services.submissions_reap_lost() == 1
    lost.refresh_from_db()
    assert (lost.state, lost.verdict, lost.score) == ("graded", "internal_error", None)
    graded = services.submission_create(user=user, problem=softmax_problem, code="x = 2\n")
    Submission.objects.filter(pk=graded.pk).update(
        state="graded", verdict="accepted", score=1.0, graded_at=timezone.now()
    )
    assert services.problem_regrade(softmax_problem) == 1  # the submission, not the Run
    lost.refresh_from_db()
    assert (lost.state, lost.purpose, lost.attempt) == ("graded", "run", services.MAX_ATTEMPTS - 1)
