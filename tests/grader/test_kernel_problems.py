"""Kernel problems on the CPU: Triton under the interpreter, correctness only, no speed number.

Each shipped kernel problem's reference is accepted; its wrong solutions and its cheating
solution are rejected with the verdict that names the fault. The bf16 (``gpu_only``) tests
and the timing run on a GPU only: ``python -m grader.gpu_check``.
"""

from __future__ import annotations

import dataclasses

import pytest

from grader.bank import PROBLEMS_DIR, problem_read
from grader.grading import grade
from grader.harnesses.base import ProblemError
from grader.harnesses.contract import Verdict
from grader.harnesses.kernel import KernelHarness
from grader.harnesses.timing import gpu_available
from grader.sandbox import SandboxSession

pytestmark = pytest.mark.skipif(gpu_available(), reason="the GPU run is grader/gpu_check.py")

KERNEL_PROBLEMS = (
    "triton-attention",
    "paged-decode-attention",
    "int8-matmul",
    "fused-rmsnorm-fp8",
    "lora-bgmv",
    "moe-dispatch",
)
CASES = [
    ("triton-attention", "reference.py", Verdict.ACCEPTED),
    ("triton-attention", "wrong/one_sequence.py", Verdict.WRONG_ANSWER),
    ("triton-attention", "wrong/kv_head_modulo.py", Verdict.WRONG_ANSWER),
    ("triton-attention", "solutions/torch_sdpa.py", Verdict.POLICY),
    ("triton-attention", "cheats/background_thread.py", Verdict.POLICY),
    ("triton-attention", "cheats/side_stream.py", Verdict.POLICY),
    ("triton-attention", "cheats/patched_event_timer.py", Verdict.POLICY),
    ("paged-decode-attention", "reference.py", Verdict.ACCEPTED),
    ("paged-decode-attention", "wrong/contiguous_blocks.py", Verdict.WRONG_ANSWER),
    ("paged-decode-attention", "wrong/whole_last_block.py", Verdict.WRONG_ANSWER),
    ("paged-decode-attention", "solutions/engine_kernel.py", Verdict.POLICY),
    ("paged-decode-attention", "cheats/cached_result.py", Verdict.POLICY),
    ("paged-decode-attention", "cheats/calls_oracle.py", Verdict.POLICY),
    ("int8-matmul", "reference.py", Verdict.ACCEPTED),
    ("int8-matmul", "wrong/per_tensor_scale.py", Verdict.WRONG_ANSWER),
    ("int8-matmul", "wrong/truncating_round.py", Verdict.WRONG_ANSWER),
    ("int8-matmul", "cheats/patched_timer.py", Verdict.POLICY),
    ("fused-rmsnorm-fp8", "reference.py", Verdict.ACCEPTED),
    ("fused-rmsnorm-fp8", "wrong/mean_over_padded_block.py", Verdict.WRONG_ANSWER),
    ("fused-rmsnorm-fp8", "wrong/absmax_before_weight.py", Verdict.WRONG_ANSWER),
    ("fused-rmsnorm-fp8", "wrong/truncating_cast.py", Verdict.WRONG_ANSWER),
    ("fused-rmsnorm-fp8", "solutions/torch_unfused.py", Verdict.POLICY),
    ("fused-rmsnorm-fp8", "cheats/cached_by_shape.py", Verdict.POLICY),
    ("lora-bgmv", "reference.py", Verdict.ACCEPTED),
    ("lora-bgmv", "wrong/segment_end_off_by_one.py", Verdict.WRONG_ANSWER),
    ("lora-bgmv", "wrong/no_adapter_as_zero.py", Verdict.WRONG_ANSWER),
    ("lora-bgmv", "solutions/per_adapter_loop.py", Verdict.POLICY),
    ("lora-bgmv", "cheats/forged_digests.py", Verdict.POLICY),
    ("moe-dispatch", "reference.py", Verdict.ACCEPTED),
    ("moe-dispatch", "wrong/gates_not_renormalised.py", Verdict.WRONG_ANSWER),
    ("moe-dispatch", "wrong/unmasked_hidden_tail.py", Verdict.WRONG_ANSWER),
    ("moe-dispatch", "solutions/per_expert_loop.py", Verdict.POLICY),
    ("moe-dispatch", "cheats/patched_clock.py", Verdict.POLICY),
]
# The baselines (torch SDPA, the engine's decode kernel) and the cheats break the statement's
# rule, read in their source before they run; what the policy verdict of each must name. The
# runtime controls behind the rule (the chained timing) are attacked in test_kernel_timing.py.
POLICY_WORDS = {
    "solutions/torch_sdpa.py": "F.scaled_dot_product_attention does work outside your Triton",
    "solutions/engine_kernel.py": "imports engine.attention",
    "cheats/background_thread.py": "imports threading",
    "cheats/side_stream.py": "torch.cuda.Stream is not for a kernel's call path",
    "cheats/cached_result.py": "indexes a tensor with a tensor",
    "cheats/patched_timer.py": "imports sys",
    "cheats/patched_event_timer.py": "patches torch.cuda.Event.elapsed_time",
    "cheats/calls_oracle.py": "imports engine.attention",
    "cheats/cached_by_shape.py": "indexes a tensor with a tensor (_SEEN[key])",
    "solutions/torch_unfused.py": "tensor arithmetic outside a Triton kernel (x + residual)",
    "solutions/per_adapter_loop.py": "tensor arithmetic outside a Triton kernel",
    "cheats/forged_digests.py": "patches _chain.digest_into",
    "solutions/per_expert_loop.py": "torch.topk does work outside your Triton kernels",
    "cheats/patched_clock.py": "patches time.perf_counter_ns",
}


def _grade(slug: str, solution: str):
    spec = problem_read(PROBLEMS_DIR / slug).as_spec()
    return grade(spec, (PROBLEMS_DIR / slug / solution).read_text(), seed=5, hardware={})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slug", "solution", "verdict"), CASES, ids=[f"{s}:{f}" for s, f, _ in CASES]
)
def test_solution_gets_its_verdict(slug: str, solution: str, verdict: Verdict) -> None:
    report = _grade(slug, solution)
    assert report.verdict is verdict, report.message
    if verdict is Verdict.ACCEPTED:
        assert report.message == "correct; speed not measured: no GPU"
        assert report.score is None  # no number that was not measured
        assert report.candidate is None and report.reference is None
        assert all(test.verdict is Verdict.ACCEPTED for test in report.tests)
    if solution in POLICY_WORDS:
        assert POLICY_WORDS[solution] in report.message
        assert report.tests == []  # refused before anything ran


@pytest.mark.parametrize("slug", KERNEL_PROBLEMS)
def test_problem_folder_is_complete(slug: str) -> None:
    """Two wrong solutions and a cheat per problem; bf16 tests are GPU-only; fp16 tests run here."""
    folder = PROBLEMS_DIR / slug
    problem = problem_read(folder)
    assert problem.harness == "kernel" and problem.queue == "gpu"
    assert len(list((folder / "wrong").glob("*.py"))) >= 2
    assert list((folder / "cheats").glob("*.py"))
    tests = problem.spec["tests"]
    assert all(t.get("gpu_only") for t in tests if t["dtype"] == "bfloat16")
    assert sum(not t.get("gpu_only") for t in tests) >= 5
    assert set(problem.spec["tolerance"]) == {"float16", "bfloat16"}
    benchmark = problem.spec["benchmark"]
    assert benchmark["dtype"] == "bfloat16"
    # Timed in chained batches, each call on inputs drawn afresh (grader/harnesses/chain.py).
    assert benchmark["batch_calls"] > 1 and benchmark["fresh"]
    assert (folder / "inputs.py").exists() and "def expected" not in problem.inputs_code


@pytest.mark.parametrize("slug", KERNEL_PROBLEMS)
def test_starter_is_not_accepted(slug: str) -> None:
    report = _grade(slug, "starter.py")
    assert report.verdict is Verdict.POLICY
    assert "defines no @triton.jit kernel" in report.message


def test_a_sandbox_without_the_gpu_is_our_fault_not_the_candidates() -> None:
    """Both halves must draw inputs on the same device; a GPU missing in the sandbox says so."""
    spec = problem_read(PROBLEMS_DIR / "int8-matmul").as_spec()
    spec = dataclasses.replace(spec, tests=spec.tests[:1])
    harness = KernelHarness(spec)
    harness.device = "cuda"  # as on a GPU worker whose sandbox cannot see the card
    with SandboxSession(
        KernelHarness, spec.reference_code, spec.entry_point, spec.limits
    ) as session:
        session.start(harness.shared_bytes())
        with pytest.raises(ProblemError, match="does not see the GPU"):
            harness.check_tests(session, 7, lambda step, data: None)


def test_a_test_whose_outputs_zeros_would_pass_is_our_fault() -> None:
    """A tolerance wider than the outputs would accept an empty kernel: the problem is broken."""
    spec = problem_read(PROBLEMS_DIR / "int8-matmul").as_spec()
    loose = {dtype: {"rtol": 0.0, "atol": 1.0e3} for dtype in spec.tolerance}
    harness = KernelHarness(dataclasses.replace(spec, tolerance=loose))
    case = spec.tests[0]
    with pytest.raises(ProblemError, match="returning zeros would pass this test"):
        harness._expected(case, harness._drawn(case, call_seed=1))
    honest = KernelHarness(spec)
    assert honest._expected(case, honest._drawn(case, call_seed=1))["output"].abs().max() > 0
