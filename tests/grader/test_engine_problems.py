"""The engine-plugged problems: the candidate's class runs inside the engine, in the sandbox.

Each problem's reference is accepted with a score; each wrong solution in its folder is
rejected with the verdict and a message that names the fault; the starter runs and fails
honestly; the engine's own classes are refused. One submission per problem goes through the
real worker, and the published problems are listed by the API and on the problem pages.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from grader.bank import PROBLEMS_DIR, problem_read
from grader.grading import grade
from grader.harnesses import harness_get
from grader.harnesses.contract import ProblemSpec, Verdict
from tests.grader.conftest import wait_graded

ENGINE_PROBLEMS = (
    "priority-scheduler",
    "kv-allocator",
    "batched-sampler",
    "spec-verifier",
    "grammar-sampler",
    "radix-prefix-cache",
    "slo-scheduler",
)
WORKER_GRADED = ("radix-prefix-cache", "slo-scheduler", "grammar-sampler")
# Fewer timed repetitions than the shipped problems: the same checks, less CPU in CI.
# One warm-up call as in the shipped problems: without it the first timed call pays its page
# faults outside the timer, and the untimed-CPU check calls the honest reference a cheat.
FAST_BENCHMARK = {"warmup": 1, "min_repetitions": 2, "max_repetitions": 3, "budget_s": 0.5}
# (problem, solution file, verdict, words the first failing test's message must contain, or
# a tuple of alternatives)
CASES = [
    ("priority-scheduler", "reference.py", Verdict.ACCEPTED, ""),
    ("priority-scheduler", "wrong/fcfs_ignores_priority.py", Verdict.WRONG_ANSWER, "waited while"),
    (
        "priority-scheduler",
        "wrong/no_preemption_for_arrivals.py",
        Verdict.WRONG_ANSWER,
        "preempting the lower-priority requests would have freed",
    ),
    (
        "priority-scheduler",
        "wrong/decode_tokens_not_budgeted.py",
        Verdict.WRONG_ANSWER,
        "over the token budget",
    ),
    ("kv-allocator", "reference.py", Verdict.ACCEPTED, ""),
    ("kv-allocator", "wrong/no_copy_on_write.py", Verdict.WRONG_ANSWER, "copy-on-write missing"),
    ("kv-allocator", "wrong/free_skips_last_block.py", Verdict.WRONG_ANSWER, "leak: "),
    (
        "kv-allocator",
        "wrong/append_not_all_or_nothing.py",
        Verdict.WRONG_ANSWER,
        "returned False but changed the block table",
    ),
    (
        "kv-allocator",
        "wrong/prefix_hit_on_last_token.py",
        Verdict.WRONG_ANSWER,
        "the last known token must never count as a hit",
    ),
    ("batched-sampler", "reference.py", Verdict.ACCEPTED, ""),
    (
        "batched-sampler",
        "wrong/top_p_drops_crossing_token.py",
        Verdict.WRONG_ANSWER,
        "(the filters keep it)",
    ),
    ("batched-sampler", "wrong/temperature_after_filters.py", Verdict.WRONG_ANSWER, "probs row"),
    (
        "batched-sampler",
        "wrong/one_uniform_gumbel.py",
        Verdict.WRONG_ANSWER,
        "the sampler drew token",
    ),
    ("spec-verifier", "reference.py", Verdict.ACCEPTED, ""),
    (
        "spec-verifier",
        "wrong/accept_when_p_at_least_q.py",
        Verdict.WRONG_ANSWER,
        "so it must be accepted",
    ),
    (
        "spec-verifier",
        "wrong/resample_from_target.py",
        Verdict.WRONG_ANSWER,
        "sampled from the residual max(0, p - q)",
    ),
    ("spec-verifier", "wrong/no_bonus_token.py", Verdict.WRONG_ANSWER, "the bonus token"),
    ("grammar-sampler", "reference.py", Verdict.ACCEPTED, ""),
    # correct, no table between calls: accepted, slower
    ("grammar-sampler", "solutions/mask_per_row.py", Verdict.ACCEPTED, ""),
    (
        "grammar-sampler",
        "wrong/eos_only_at_dead_ends.py",
        Verdict.WRONG_ANSWER,
        "forbids token 0 (EOS), which the grammar allows there (the state accepts)",
    ),
    (
        "grammar-sampler",
        "wrong/softmax_before_mask.py",
        Verdict.WRONG_ANSWER,
        "which the grammar does not allow",
    ),
    ("grammar-sampler", "wrong/greedy_skips_mask.py", Verdict.WRONG_ANSWER, "does not allow"),
    ("radix-prefix-cache", "reference.py", Verdict.ACCEPTED, ""),
    (
        "radix-prefix-cache",
        "wrong/free_count_excludes_evictable.py",
        Verdict.WRONG_ANSWER,
        "leak: ",
    ),
    (
        "radix-prefix-cache",
        "wrong/evicts_referenced_leaf.py",
        Verdict.WRONG_ANSWER,
        # the held leaf goes to another sequence, or (1 draw in 10) back to its own holder
        ("it was handed out while still in use", "lists a block twice"),
    ),
    (
        "radix-prefix-cache",
        "wrong/child_keyed_by_first_token.py",
        Verdict.WRONG_ANSWER,
        "but that block holds other tokens",
    ),
    ("slo-scheduler", "reference.py", Verdict.ACCEPTED, ""),
    (
        "slo-scheduler",
        "wrong/chunk_ignores_decodes.py",
        Verdict.WRONG_ANSWER,
        "over the token budget",
    ),
    ("slo-scheduler", "wrong/no_chunked_prefill.py", Verdict.WRONG_ANSWER, "starved"),
]
# The problems scored on what their policy decides (the engine's run on the trusted side).
POLICY_SCORED = ("priority-scheduler", "kv-allocator", "radix-prefix-cache", "slo-scheduler")


def fast_benchmark(slug: str, benchmark: dict) -> dict:
    return benchmark | FAST_BENCHMARK


def spec_of(slug: str) -> ProblemSpec:
    spec = problem_read(PROBLEMS_DIR / slug).as_spec()
    return dataclasses.replace(spec, benchmark=fast_benchmark(slug, spec.benchmark))


def _grade(slug: str, code: str, seed: int = 11):
    return grade(spec_of(slug), code, seed=seed, hardware={})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slug", "solution", "verdict", "words"), CASES, ids=[f"{s}:{f}" for s, f, _, _ in CASES]
)
def test_solution_gets_its_verdict(
    slug: str, solution: str, verdict: Verdict, words: str | tuple[str, ...]
) -> None:
    report = _grade(slug, (PROBLEMS_DIR / slug / solution).read_text())
    assert report.verdict is verdict, report.message
    harness = harness_get(spec_of(slug).harness)
    assert report.harness_version == f"{harness.kind}/{harness.version}"
    if verdict is Verdict.ACCEPTED:
        assert all(test.verdict is Verdict.ACCEPTED for test in report.tests)
        assert report.score > 0
        if slug in POLICY_SCORED:  # the reference against itself: the same decisions
            assert report.policy.score == report.score == 1.0
            assert report.policy.figures == report.policy.reference
        assert report.candidate.p10_ns <= report.candidate.median_ns <= report.candidate.p90_ns
        assert len(report.candidate.samples_ns) >= FAST_BENCHMARK["min_repetitions"]
        _assert_run_pictures(slug, report.tests)
        if slug in ENGINE_OWN_CLASS:  # the problems with a GPU tier
            _assert_throughput_labelled_cpu(slug, report.tests)
    else:
        failed = [test for test in report.tests if test.verdict is not Verdict.ACCEPTED]
        assert failed and failed[0].verdict is verdict
        assert any(w in failed[0].message for w in ((words,) if isinstance(words, str) else words))
        assert report.message.startswith(f"{failed[0].name}: ")


def _assert_run_pictures(slug: str, tests: list) -> None:
    """The scheduler and allocator store a small picture of every test's own run."""
    from grader.harnesses.engine_allocator import PICTURE_POINTS
    from grader.harnesses.engine_scheduler import PICTURE_BYTES

    cases = {case["name"]: case for case in spec_of(slug).tests}
    if slug == "priority-scheduler":
        for test in tests:
            if cases[test.name].get("throughput"):
                continue  # the GPU tier's run: figures in seconds, no picture
            case, picture = cases[test.name], test.details["trace"]
            assert len(json.dumps(picture)) <= PICTURE_BYTES
            wanted = case["requests"] + case.get("burst", {}).get("requests", 0)
            assert len(picture["requests"]) == picture["requests_total"] == wanted
            assert {r["priority"] for r in picture["requests"]} <= set(
                case["priorities"] + [case.get("burst", {}).get("priority", 0)]
            )
            assert all(r["ttft"] >= 1 and r["e2e"] >= r["ttft"] for r in picture["requests"])
            assert picture["stride"] == 1 and len(picture["columns"]) == test.details["steps"]
            marked = sum(len(column.get("x", [])) for column in picture["columns"])
            assert marked == test.details["preemptions"]
        assert sum(test.details.get("preemptions", 0) for test in tests) > 0
    elif slug == "slo-scheduler":
        for test in tests:
            case = cases[test.name]
            if case.get("throughput"):
                continue  # the GPU tier's run: figures in seconds, no picture
            wanted = case["requests"] + sum(b["requests"] for b in case.get("bursts", []))
            picture = test.details["trace"]
            assert len(picture["requests"]) == picture["requests_total"] == wanted
            assert test.details["requests"] == wanted
            assert 0 <= test.details["goodput"] == sum(test.details["met"].values()) <= wanted
            if case.get("beats_fcfs") or case.get("score"):
                assert test.details["goodput"] >= test.details["fcfs"]["goodput"]
        assert sum(test.details.get("ttft_missed", 0) for test in tests) > 0  # not vacuous
    elif slug in ("kv-allocator", "radix-prefix-cache"):
        for test in tests:
            case = cases[test.name]
            if case.get("throughput"):
                continue  # the GPU tier's run: figures in seconds, no picture
            if case["mode"] == "engine":
                assert "trace" not in test.details
                continue
            picture = test.details["trace"]
            assert picture["ops"] == test.details["ops"]
            assert len(picture["used"]) == -(-picture["ops"] // picture["stride"]) <= PICTURE_POINTS
            assert 0 < max(picture["used"]) <= case["num_blocks"] == picture["num_blocks"]
            if case["mode"] == "ops" and picture["stride"] == 1:
                assert picture["used"][-1] == 0  # every script ends by freeing every sequence


def _assert_throughput_labelled_cpu(slug: str, tests: list) -> None:
    """The GPU tier's throughput test on a CPU worker: the candidate's class (here the
    reference) served the workload on the tiny model, and so did the engine's own class, each
    with measured output tokens/s, TTFT and TPOT, labelled CPU."""
    cases = {case["name"]: case for case in spec_of(slug).tests}
    (test,) = [test for test in tests if cases[test.name].get("throughput")]
    _assert_tier_figures_on_cpu(slug, test, cases[test.name])


# The engine's own class each problem's throughput test serves the same workload with.
ENGINE_OWN_CLASS = {
    "priority-scheduler": "PriorityScheduler",
    "kv-allocator": "PrefixCachingAllocator",
    "batched-sampler": "TopKTopPSampler",
    "spec-verifier": "RejectionSampler",
    "radix-prefix-cache": "PrefixCachingAllocator",
    "slo-scheduler": "FCFSScheduler",
}


def _assert_tier_figures_on_cpu(slug: str, test, case: dict) -> None:
    assert test.verdict is Verdict.ACCEPTED
    assert test.message.startswith("CPU (tiny): ")
    assert f"x the engine's {ENGINE_OWN_CLASS[slug]}" in test.message
    for side in (test.details["throughput"], test.details["engine"]):
        assert (side["device"], side["model"], side["requests"]) == (
            "CPU",
            "tiny",
            case["requests"],
        )
        ranges = [c["max_tokens"] for c in case.get("classes", [case])]  # slo-scheduler's
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        assert low * case["requests"] <= side["output_tokens"] <= high * case["requests"]
        assert side["output_tokens_per_s"] > 0 and side["wall_s"] > 0
        assert 0 < side["ttft_ms"]["p50"] <= side["ttft_ms"]["p99"]
        assert 0 < side["tpot_ms"]["p50"] <= side["tpot_ms"]["p99"]
    # The same workload, all of it served by both: the same tokens out.
    assert test.details["throughput"]["output_tokens"] == test.details["engine"]["output_tokens"]
    if slug in ("batched-sampler", "spec-verifier"):
        # On the CPU every answer is kept and judged after the run, but for the rare row
        # within float32 rounding of a decision.
        assert 0.9 * test.details["rows"] <= test.details["rows_judged"] <= test.details["rows"]
    if slug == "spec-verifier":  # the engine's own count, for both verifiers
        for side in (test.details["throughput"], test.details["engine"]):
            assert 0 < side["acceptance_rate"] < 1


# The sampler's and verifier's GPU tier alone (the spec's throughput test, CPU path): a correct
# but slow Python solution keeps its verdict and gets its figures; a wrong one is stopped by
# the answers' checks there. (problem, solution, verdict, words in the test's message)
TIER_CASES = [
    ("batched-sampler", "solutions/python_loop_draw.py", Verdict.ACCEPTED, "every greedy row"),
    (
        "batched-sampler",
        "wrong/temperature_after_filters.py",
        Verdict.WRONG_ANSWER,
        "throughput run, step ",
    ),
    ("batched-sampler", "out-of-vocabulary", Verdict.WRONG_ANSWER, "is not a token id"),
    ("spec-verifier", "solutions/python_loop_rows.py", Verdict.ACCEPTED, "judged by the rule"),
    (
        "spec-verifier",
        "wrong/accept_when_p_at_least_q.py",
        Verdict.WRONG_ANSWER,
        "throughput run, verification ",
    ),
]
# A sampler right in every test but the engine's: its tokens are not token ids there.
OUT_OF_VOCABULARY = """

_sample = BatchedSampler.sample


def _sample_out_of_vocabulary(self, logits, batch):
    tokens = _sample(self, logits, batch)
    return tokens + logits.shape[-1] if logits.shape[-1] == 10240 else tokens


BatchedSampler.sample = _sample_out_of_vocabulary
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slug", "solution", "verdict", "words"),
    TIER_CASES,
    ids=[f"{s}:{f}" for s, f, _, _ in TIER_CASES],
)
def test_sampler_and_verifier_gpu_tier_on_cpu_judges_every_answer(
    slug: str, solution: str, verdict: Verdict, words: str
) -> None:
    spec = spec_of(slug)
    (case,) = [case for case in spec.tests if case.get("throughput")]
    if solution == "out-of-vocabulary":
        code = spec.reference_code + OUT_OF_VOCABULARY
    else:
        code = (PROBLEMS_DIR / slug / solution).read_text()
    report = grade(dataclasses.replace(spec, tests=[case]), code, seed=11, hardware={})
    assert report.verdict is verdict, report.message
    (test,) = report.tests
    assert words in test.message
    if verdict is Verdict.ACCEPTED:
        _assert_tier_figures_on_cpu(slug, test, case)


@pytest.mark.slow
@pytest.mark.parametrize("slug", ENGINE_PROBLEMS)
def test_starter_runs_and_fails_honestly(slug: str) -> None:
    report = _grade(slug, (PROBLEMS_DIR / slug / "starter.py").read_text())
    assert report.verdict is Verdict.RUNTIME_ERROR
    assert "NotImplementedError" in report.message
    assert report.tests[0].verdict is Verdict.RUNTIME_ERROR


@pytest.mark.parametrize("slug", ENGINE_PROBLEMS)
def test_problem_folder_is_complete(slug: str) -> None:
    folder = PROBLEMS_DIR / slug
    problem = problem_read(folder)
    assert problem.published and problem.queue == "cpu"
    assert len(list((folder / "wrong").glob("*.py"))) >= 2
    wrong_listed = {s for p, s, v, _ in CASES if p == slug and v is not Verdict.ACCEPTED}
    assert wrong_listed == {f"wrong/{f.name}" for f in (folder / "wrong").glob("*.py")}
    statement = problem.statement_md
    for section in ("## The interface", "## A worked example", "## Score"):
        assert section in statement
    assert problem.entry_point in problem.starter_code
    assert problem.entry_point in problem.reference_code


def test_tiny_vocabulary_matches_the_engine() -> None:
    from engine.config import MODELS
    from grader.harnesses.engine_run import VOCAB_SIZE

    assert MODELS["tiny"].vocab_size == VOCAB_SIZE


def test_scheduler_replay_names_the_step_and_requests() -> None:
    """A hand-made trace: request 1 (priority 0) waits while request 0 (priority 2) decodes."""
    from grader.harnesses.base import CandidateFailure
    from grader.harnesses.engine_scheduler import replay

    requests = [
        {"id": "0", "prompt": [1] * 8, "max_tokens": 4, "priority": 2, "arrival_step": 0},
        {"id": "1", "prompt": [2] * 4, "max_tokens": 2, "priority": 0, "arrival_step": 1},
    ]
    config = {"block_size": 8, "num_kv_blocks": 2, "max_num_seqs": 4, "max_num_batched_tokens": 16}
    trace = [
        {"s": [["0", 8]], "l": [["0", "running", 0, 1]]},
        {"s": [["0", 1]], "l": [["0", "running", 8, 2], ["1", "waiting", 0, 0]]},
    ]
    with pytest.raises(CandidateFailure) as failure:
        replay(trace, requests, config)
    assert failure.value.message == (
        "step 1: request 1 (priority 0) waited while request 0 (priority 2) ran; preempting "
        "the lower-priority requests would have freed 2 blocks (0 were already free) and it "
        "needs 1"
    )


def test_allocator_model_names_double_ownership_and_leaks() -> None:
    """Hand-made results: a block handed to a second sequence, then a free that keeps a block."""
    from grader.harnesses.base import CandidateFailure
    from tests.grader.test_run_pictures import check_script

    script = [["new", 0, [1, 2, 3]], ["advance", 0, 4, 9], ["new", 1, [5, 6]], ["advance", 1, 4, 9]]
    results = [[0, [], 4], [True, [2], [], 3], [0, [], 3], [True, [2], [], 3]]
    with pytest.raises(CandidateFailure) as failure:
        check_script(script, results, num_blocks=4, block_size=4)
    assert failure.value.message == (
        "op 3 (advance 1): block 2 owned by sequences 0 and 1: it was handed out while still in use"
    )
    script = [["new", 0, [1, 2, 3, 4, 5]], ["advance", 0, 8, 9], ["free", 0]]
    results = [[0, [], 4], [True, [0, 1], [], 2], [[], 3]]
    with pytest.raises(CandidateFailure) as failure:
        check_script(script, results, num_blocks=4, block_size=4)
    assert failure.value.message == (
        "leak: 1 blocks not freed after all sequences finished (op 2 (free 0); "
        "num_free_blocks is 3 of 4)"
    )


def test_sampler_oracle_matches_the_worked_example() -> None:
    import torch

    from grader.harnesses.engine_sampler import SamplerHarness

    harness = SamplerHarness(spec_of("batched-sampler"))
    logits = torch.tensor([[2.0, 1.0, 0.0, float("-inf")]] * 3)
    settings = torch.tensor([[1.0, 0, 0.8, 0.0]] * 2 + [[0.0, 0, 1.0, 0.0]], dtype=torch.float64)
    probs, unsure = harness.target_probs(logits, settings)
    assert [round(p, 3) for p in probs[0].tolist()] == [0.731, 0.269, 0.0, 0.0]
    tokens, allowed, judged = harness.sample_expected(logits, settings, [0.8, 0.5, 0.9])
    assert tokens.tolist() == [1, 0, 0] and judged.all() and not unsure.any()
    assert (allowed == tokens[:, None]).all()


def test_grammar_oracle_and_reference_match_the_worked_example() -> None:
    """The statement's example: the automaton of `[0-9]{1,2}`, a row in state 1."""
    import numpy as np
    import torch

    from engine.grammar_compile import token_fsm
    from grader.harnesses.engine_grammar import GrammarHarness, allowed_rows
    from grader.harnesses.engine_run import reference_class

    fsm = token_fsm("[0-9]{1,2}", ["", "0", "1", "12", "x"])
    logits = torch.tensor([[0.0, 1.0, 0.0, 5.0, 9.0]] * 4)
    states = torch.tensor([1, 1, 1, 1])
    temperature = torch.tensor([1.0, 1.0, 1.0, 0.0])
    uniforms = torch.tensor([0.5, 0.1, 0.9, 0.5], dtype=torch.float64)
    allowed = allowed_rows(fsm, states.numpy())
    assert allowed[0].tolist() == [True, True, True, False, False]
    harness = GrammarHarness(spec_of("grammar-sampler"))
    want, judged = harness.sample_expected(
        logits.numpy(), allowed, temperature.numpy(), uniforms.numpy()
    )
    assert want.tolist() == [1, 0, 2, 1] and judged.all()
    problem = problem_read(PROBLEMS_DIR / "grammar-sampler")
    sampler = reference_class(problem.reference_code, problem.entry_point)()
    assert sampler.mask(fsm, states).tolist() == allowed.tolist()
    assert sampler.sample(logits, fsm, states, temperature, uniforms).tolist() == [1, 0, 2, 1]
    assert np.array_equal(want, [1, 0, 2, 1])


def test_verifier_oracle_matches_the_worked_example() -> None:
    import torch

    from grader.harnesses.engine_verifier import VerifierHarness

    harness = VerifierHarness(spec_of("spec-verifier"))
    draft_tokens = torch.tensor([[0, 2]])
    q = torch.tensor([[[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]])
    p = torch.tensor([[[0.3, 0.5, 0.2], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]]])
    for uniforms, tokens, accepted in (
        ([0.4, 0.9, 0.7], [0, 2, 1], 2),
        ([0.6, 0.9, 0.7], [2, -1, -1], 0),
    ):
        got = harness.verify_expected(
            draft_tokens, q, p, torch.tensor([uniforms], dtype=torch.float64)
        )
        assert [a.tolist() for a in got] == [[tokens], [accepted], [False]]


@pytest.mark.slow
def test_engine_problems_are_graded_by_the_real_worker_and_listed(
    module_worker, transactional_db, user
):
    from django.test import Client

    from grader import access
    from grader.bank import problems_load
    from grader.models import Problem
    from grader.services import submission_create

    problems_load()
    token = access.api_token_create(user, "tests")[1]
    listed = Client(headers={"Authorization": f"Bearer {token}"}).get("/api/problems").json()
    assert set(ENGINE_PROBLEMS) <= {p["slug"] for p in listed}
    browser = Client()
    browser.force_login(user)
    index = browser.get("/problems/").content.decode()
    for slug in ENGINE_PROBLEMS:
        assert f"/problems/{slug}/" in index
        page = browser.get(f"/problems/{slug}/")
        assert page.status_code == 200
        assert "The interface" in page.content.decode()
    # Through the worker: one problem of each way a part talks to the engine (an allocator
    # asked mid-step, a scheduler, a sampler); every reference is graded in process above.
    for slug in WORKER_GRADED:
        problem = Problem.objects.get(slug=slug)
        problem.spec = problem.spec | {"benchmark": fast_benchmark(slug, problem.spec["benchmark"])}
        problem.save()
        submission = submission_create(user=user, problem=problem, code=problem.reference_code)
        graded = wait_graded(submission.pk, timeout_s=240)
        assert graded.verdict == Verdict.ACCEPTED, graded.message
        assert graded.score > 0
        assert graded.sandbox == "bubblewrap"
        assert json.dumps(graded.timing)
