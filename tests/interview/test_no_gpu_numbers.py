"""No number that was not measured: a kernel problem graded on a CPU-only machine.

The incident (issue 20): on a machine without a GPU a plain PyTorch loop submitted to the
Triton paged-decode problem was shown as "0.000x the reference's speed", marked solved,
ranked #1 with 0.000x and counted 1.00 in a loop rated Hire. Here the same path runs for
real: submitted through the API and a loop's coding round, graded in this process by the
worker's own code (Triton under its interpreter), then read back on every page.
"""

from __future__ import annotations

import random

import pytest
from django.test import Client

from grader import access, services
from grader.bank import PROBLEMS_DIR, problems_load
from grader.harnesses.timing import gpu_available
from grader.models import Submission
from interview import services as interview_services
from interview.models import RoundKind

pytestmark = [
    pytest.mark.skipif(gpu_available(), reason="a CPU-only machine's results"),
    pytest.mark.usefixtures("fresh_buckets"),
]
SLUG = "paged-decode-attention"
# The incident's solution: the attention in plain PyTorch, no Triton kernel at all.
PLAIN_TORCH_LOOP = """import torch


def paged_decode_attention(q, k_cache, v_cache, block_tables, seq_lens):
    out = torch.empty_like(q)
    group = q.shape[1] // k_cache.shape[2]
    for b in range(q.shape[0]):
        n = int(seq_lens[b])
        blocks = block_tables[b, : (n + k_cache.shape[1] - 1) // k_cache.shape[1]].long()
        k = k_cache[blocks].flatten(0, 1)[:n].float().repeat_interleave(group, dim=1)
        v = v_cache[blocks].flatten(0, 1)[:n].float().repeat_interleave(group, dim=1)
        scores = torch.einsum("hd,nhd->hn", q[b].float(), k) / q.shape[-1] ** 0.5
        out[b] = torch.einsum("hn,nhd->hd", scores.softmax(-1), v).to(q.dtype)
    return out
"""


@pytest.fixture
def sent(monkeypatch) -> list[Submission]:
    """The jobs handed to the broker; this test grades them itself, as a CPU worker would."""
    jobs: list[Submission] = []
    monkeypatch.setattr(services, "_enqueue", lambda s, countdown_s=0: jobs.append(s))
    return jobs


def _grade_sent(sent: list[Submission]) -> None:
    while sent:
        job = sent.pop(0)
        services.submission_grade(job.pk, job.attempt, "cpu-worker@test")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_kernel_graded_without_a_gpu_shows_ranks_and_counts_no_speed(bank, alice, sent):
    problems_load()
    client = Client()
    client.force_login(alice)
    _, token = access.api_token_create(alice, "test")
    api = Client(headers={"authorization": f"Bearer {token}"})
    reference = (PROBLEMS_DIR / SLUG / "reference.py").read_text()

    # The plain loop is no Triton kernel: refused, never accepted with a speed of 0.
    loop_answer = api.post(
        "/api/submissions",
        {"problem": SLUG, "code": PLAIN_TORCH_LOOP},
        content_type="application/json",
    )
    assert loop_answer.status_code == 201, loop_answer.content
    assert loop_answer.json()["queue"] == "cpu"  # no card is live: correctness only
    _grade_sent(sent)
    plain = Submission.objects.get(pk=loop_answer.json()["id"])
    assert plain.verdict == "policy", plain.message

    # The reference in a mock loop's coding round: correct, and its speed not measured.
    loop = interview_services.loop_start(
        user=alice, level="mid", length_min=30, rng=random.Random(4)
    )
    coding = loop.rounds.get(kind=RoundKind.CODING)
    coding.problem_slug = SLUG
    coding.save(update_fields=["problem_slug"])
    interview_services.round_open(user=alice, round_id=coding.pk)
    interview_services.round_submit(user=alice, round_id=coding.pk, data={"code": reference})
    _grade_sent(sent)
    correct = Submission.objects.get(user=alice, purpose=Submission.Purpose.INTERVIEW)
    assert correct.verdict == "accepted", correct.message

    detail = api.get(f"/api/submissions/{correct.pk}").json()
    assert detail["score"] is None
    assert detail["speed_measured"] is False
    assert detail["queue"] == "cpu"

    results = client.get(f"/submissions/{correct.pk}/").content.decode()
    assert "correctness only: no GPU" in results
    assert "×</strong> the reference" not in results
    assert "0.000" not in results

    problems = client.get("/problems/").content.decode()
    assert "correct (speed not measured)" in problems
    assert ">solved<" not in problems

    board = client.get(f"/leaderboards/{SLUG}/").content.decode()
    assert "(you)" not in board  # no row of hers
    assert "No accepted, timed submissions" in board

    interview_services.loop_finish(user=alice, loop_id=loop.pk)
    scorecard = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()
    assert "correct (speed not measured)" in scorecard
    assert "× the reference" not in scorecard
    loop.refresh_from_db()
    coding_row = next(r for r in loop.scorecard["rounds"] if r["kind"] == "coding")
    assert coding_row["best"]["speed_score"] is None
    assert coding_row["best"]["speed_measured"] is False
