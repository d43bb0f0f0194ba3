"""Coding pages' selectors and views: leaderboards, results as chart data, statements, submit."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from grader import models as grader_models
from grader.bank import problems_load
from grader.markdown_render import markdown_html
from grader.models import Problem, Submission
from grader.selectors import NO_WORKER_NOTE, problem_fit
from interview.coding_selectors import card_of, leaderboards, results_of

pytestmark = pytest.mark.django_db


def graded(username: str, score: float, label: str, **fields) -> Submission:
    user, _ = get_user_model().objects.get_or_create(username=username)
    return Submission.objects.create(
        user=user,
        problem=Problem.objects.get(slug="cpu-softmax"),
        code="pass\n",
        seed=1,
        state=Submission.State.GRADED,
        verdict=fields.pop("verdict", "accepted"),
        score=score,
        graded_at=timezone.now(),
        hardware={"label": label},
        timing=fields.pop(
            "timing", {"candidate": {"median_ns": 2e6, "p10_ns": 1.8e6, "p90_ns": 2.4e6}}
        ),
        **fields,
    )


def test_leaderboards_rank_each_persons_best_per_hardware_and_hide_suspects():
    problems_load()
    graded("ada", 1.1, "cpu-a")
    graded("ada", 1.5, "cpu-a")
    graded("bob", 1.3, "cpu-a")
    graded("eve", 9.0, "cpu-a", verdict="suspect", needs_review=True)
    graded("carl", 0.9, "cpu-a", verdict="wrong_answer")
    graded("dan", 3.0, "gpu-b")

    boards = leaderboards()
    assert [
        (b.hardware, [(e.rank, e.username, e.submission.score) for e in b.entries]) for b in boards
    ] == [
        ("cpu-a", [(1, "ada", 1.5), (2, "bob", 1.3)]),
        ("gpu-b", [(1, "dan", 3.0)]),
    ]
    entry = boards[0].entries[0]
    assert entry.speed.median_ms == 2.0 and entry.speed.spread_pct == pytest.approx(15.0)
    assert [b.hardware for b in leaderboards(hardware="gpu-b")] == ["gpu-b"]


def test_results_chart_every_number_a_harness_recorded():
    problems_load()
    submission = graded("kim", 1.0, "cpu-a", message="1.000x the reference's speed")
    grader_models.TestResult.objects.bulk_create(
        [
            grader_models.TestResult(
                submission=submission, index=0, name="small", verdict="accepted",
                details={"steps": 12, "preemptions": 0, "fatal": False},
            ),
            grader_models.TestResult(
                submission=submission, index=1, name="score", verdict="accepted",
                details={"steps": 80, "tokens_per_step": 3.5,
                         "reference": {"steps": 40, "tokens_per_step": 3.5}},
            ),
        ]
    )  # fmt: skip
    results = results_of(Submission.objects.get(pk=submission.pk))
    assert results.measures == {
        "metrics": ["steps", "preemptions", "tokens_per_step"],
        "labels": ["steps", "preemptions", "tokens per step"],
        "rows": [
            {"test": "small", "values": [12, 0, None]},
            {"test": "score", "values": [80, None, 3.5]},
        ],
    }
    assert results.figures == [
        {
            "test": "score",
            "rows": [
                {"metric": "steps", "yours": 80, "reference": 40},
                {"metric": "tokens per step", "yours": 3.5, "reference": 3.5},
            ],
        }
    ]
    assert results.shows_score and results.message == ""  # the banner already says 1.000x
    assert results.roofline is None  # a function problem has no roofline


def test_results_draw_the_run_pictures_of_passed_tests_only(client):
    from grader.harnesses.engine_scheduler import replay, run_picture
    from tests.grader.test_run_pictures import CONFIG, REQUESTS, TRACE

    problems_load()
    submission = graded("ida", 1.0, "cpu-a")
    picture = run_picture(TRACE, replay(TRACE, REQUESTS, CONFIG), CONFIG["num_kv_blocks"])
    grader_models.TestResult.objects.bulk_create(
        [
            grader_models.TestResult(
                submission=submission, index=0, name="burst", verdict="accepted",
                details={"steps": 4, "preemptions": 1, "trace": picture},
            ),
            grader_models.TestResult(
                submission=submission, index=1, name="later", verdict="wrong_answer",
                message="step 3: request 2 waited", details={"trace": picture},
            ),
        ]
    )  # fmt: skip
    results = results_of(Submission.objects.get(pk=submission.pk))
    classes = [
        {"priority": 0, "requests": 1, "ttft_p50": 1.0, "ttft_p90": 1.0,
         "e2e_p50": 1.0, "e2e_p90": 1.0, "preemptions": 0},
        {"priority": 1, "requests": 1, "ttft_p50": 1.0, "ttft_p90": 1.0,
         "e2e_p50": 4.0, "e2e_p90": 4.0, "preemptions": 1},
    ]  # fmt: skip
    assert results.runs == [{"test": "burst"} | picture | {"classes": classes}]
    assert results.measures["metrics"] == ["steps", "preemptions"]  # the picture is no measure
    assert results.chart_data()["runs"] == results.runs

    client.force_login(submission.user)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert 'id="run-timeline"' in page and 'id="run-ttft-cdf"' in page
    assert 'id="run-test"' not in page  # one run: nothing to choose
    assert "burst: 2 requests, 4 steps" in page
    assert (
        '<th scope="row">1</th><td class="num">1</td><td class="num">1 / 1</td>'
        '<td class="num">4 / 4</td><td class="num">1</td>'
    ) in page


def test_a_visitor_finds_the_public_leaderboards_and_reads_the_statements(client):
    problems_load()
    graded("ada", 1.5, "cpu-a")
    nav = (
        client.get("/")
        .content.decode()
        .split('<nav aria-label="Main" id="main-nav">')[1]
        .split("</nav>")[0]
    )
    assert '<a href="/leaderboards/">Leaderboards</a>' in nav
    board = client.get("/leaderboards/")
    assert board.status_code == 200 and "ada" in board.content.decode()
    # Statements are public, as LeetCode's are; the editor and submitting need an account.
    listing = client.get("/problems/").content.decode()
    assert "Fast, stable softmax on the CPU" in listing and "10 min" in listing
    statement = client.get("/problems/cpu-softmax/").content.decode()
    assert "Write <code>softmax(" in statement and "Log in</a> or" in statement
    assert "submit-form" not in statement
    assert client.post("/problems/cpu-softmax/submit/", {"code": "x = 1\n"}).status_code == 302


def test_the_problem_list_shows_all_fifteen_problems_with_their_difficulty(client):
    problems_load()
    listing = client.get("/problems/").content.decode()
    rows = listing.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    shipped = {p.slug: problem_fit(p)[0] for p in Problem.objects.filter(published=True)}
    assert len(shipped) == 15
    for slug, difficulty in shipped.items():
        row = next(r for r in rows if f"/problems/{slug}/" in r)
        assert f'difficulty-{difficulty}">{difficulty.capitalize()}</span>' in row, slug


def test_statements_keep_maths_for_katex_and_escape_html():
    html = markdown_html("Cost $O(n_i^2)$ per *row*.\n\n<script>alert(1)</script>\n")
    assert "$O(n_i^2)$" in html and "<em>row</em>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_submitting_from_the_page_answers_json_and_refuses_past_the_limit(client):
    problems_load()
    user = get_user_model().objects.create_user("sam")
    client.force_login(user)
    reply = client.post(
        "/problems/cpu-softmax/submit/", {"code": "x = 1\n"}, HTTP_ACCEPT="application/json"
    )
    assert reply.status_code == 201
    submission = Submission.objects.get(user=user)
    assert reply.json() == {
        "id": submission.pk,
        "url": f"/submissions/{submission.pk}/",
        "results_url": f"/submissions/{submission.pk}/results/",
        "no_worker": NO_WORKER_NOTE,  # these tests run none
    }
    other = get_user_model().objects.create_user("nosy")
    client.force_login(other)
    assert client.get(f"/submissions/{submission.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("hardware", "card"),
    [
        ({"label": "NVIDIA H100 80GB HBM3"}, "h100-sxm"),
        ({"label": "NVIDIA H200"}, "h200"),
        ({"label": "NVIDIA A100-SXM4-40GB", "gpus": [{"memory_bytes": 40 * 2**30}]}, "a100-40gb"),
        ({"label": "NVIDIA A100-SXM4-80GB", "gpus": [{"memory_bytes": 80 * 2**30}]}, "a100-80gb"),
        ({"label": "NVIDIA L40S"}, "l40s"),
        ({"label": "NVIDIA L4"}, "l4"),
        ({"label": "NVIDIA H100 PCIe"}, None),
        ({"label": "AMD EPYC 7B13"}, None),
    ],
    ids=["h100", "h200", "a100-40", "a100-80", "l40s", "l4", "h100-pcie", "cpu"],
)
def test_the_roofline_uses_the_datasheet_of_the_card_it_ran_on(hardware, card):
    found = card_of(hardware)
    assert (found.name if found else None) == card


def _timed(candidate_ms: tuple[float, float, float], reference_ms: tuple[float, float, float]):
    def ns(p10: float, median: float, p90: float) -> dict[str, float]:
        return {"p10_ns": p10 * 1e6, "median_ns": median * 1e6, "p90_ns": p90 * 1e6}

    return {"candidate": ns(*candidate_ms), "reference": ns(*reference_ms)}


@pytest.mark.parametrize(
    ("candidate_ms", "reference_ms", "within_noise", "too_noisy"),
    [
        pytest.param((0.95, 1.0, 1.1), (1.05, 1.1, 1.2), True, False, id="overlapping-spreads"),
        pytest.param((0.5, 0.52, 0.55), (1.0, 1.05, 1.1), False, False, id="clearly-faster"),
        pytest.param((0.5, 0.52, 0.55), (0.4, 1.0, 1.66), True, True, id="reference-63pct-spread"),
    ],
)
def test_a_ratio_says_when_it_is_within_noise_or_the_host_too_noisy_to_rank(
    client, candidate_ms, reference_ms, within_noise, too_noisy
):
    problems_load()
    submission = graded("kim", 1.1, "cpu-a", timing=_timed(candidate_ms, reference_ms))
    client.force_login(submission.user)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert ('id="within-noise"' in page) is within_noise
    assert ('id="too-noisy"' in page) is too_noisy
    assert "1.100×" in page


@pytest.mark.parametrize(
    "verdict",
    ["wrong_answer", "accepted"],
    ids=["failed", "accepted-but-untimed (a kernel on a CPU worker)"],
)
def test_a_submission_without_a_measured_speed_shows_no_ratio_anywhere(client, verdict):
    problems_load()
    untimed = graded("kim", 0.0, "cpu-a", verdict=verdict, message="speed not measured")
    client.force_login(untimed.user)

    for url in (
        f"/submissions/{untimed.pk}/",
        "/problems/cpu-softmax/",
        "/dashboard/",
        "/profile/",
        "/leaderboards/",
    ):
        page = client.get(url).content.decode()
        assert "0.000×" not in page and "0.00×" not in page, url
