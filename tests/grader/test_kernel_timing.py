"""The kernel kind's timed batches on the CPU (Triton's interpreter), attacks first.

On a GPU the trusted side times batches of chained calls (``grader/harnesses/chain.py``); the
chain and every check it makes run the same way here, on tiny shapes, in a real sandbox. The
attacks (``grader/attacks.py``) go round the source rule, as code that got past it would: each is
run straight through the harness's timed call, the way ``grade()`` runs it on a GPU; the GPU
check runs them again on a card, the side stream included.
"""

from __future__ import annotations

import dataclasses

import pytest

from grader.attacks import RUNTIME_ATTACKS
from grader.bank import PROBLEMS_DIR, problem_read
from grader.harnesses.base import CandidateFailure
from grader.harnesses.kernel import KernelHarness
from grader.sandbox import SandboxSession

# Shapes the interpreter runs in about a second a call; three chained calls a batch.
TINY_BENCHMARKS = {
    "int8-matmul": {"m": 3, "k": 64, "n": 96, "input_sets": 2, "fresh": ["x"]},
    "paged-decode-attention": {
        "batch": 2, "seq_len": 40, "heads": 4, "kv_heads": 2, "head_dim": 64, "block_size": 16,
        "fresh": ["q"],
    },
    "triton-attention": {
        "lengths": [17, 33], "heads": 2, "kv_heads": 1, "head_dim": 64, "fresh": ["q", "k", "v"],
    },
    "fused-rmsnorm-fp8": {"tokens": 5, "hidden": 96, "input_sets": 2, "fresh": ["x"]},
    "lora-bgmv": {
        "tokens": 4, "adapters": 6, "d_in": 64, "d_out": 48, "rank": 8, "plain_every": 3,
        "input_sets": 2, "fresh": ["x"],
    },
    "moe-dispatch": {
        "tokens": 3, "experts": 6, "top_k": 2, "hidden": 64, "d_out": 32, "cold": 2,
        "input_sets": 2, "fresh": ["x", "router_logits"],
    },
}  # fmt: skip


def _spec(slug: str):
    shipped = problem_read(PROBLEMS_DIR / slug).as_spec()
    benchmark = TINY_BENCHMARKS[slug] | {"name": "benchmark", "dtype": "float16", "batch_calls": 3}
    return dataclasses.replace(shipped, tests=shipped.tests[:1], benchmark=benchmark)


def _timed(spec, code: str, batches: int, checked: bool = True):
    """Time ``batches`` batches of ``code`` through the harness, as grade() does on a GPU
    (``checked`` off: as it times the problem's reference)."""
    harness = KernelHarness(spec)
    harness.checks_timed_outputs = checked
    with SandboxSession(KernelHarness, code, spec.entry_point, spec.limits) as session:
        session.start(harness.shared_bytes())
        call = harness.timed_call(session, seed=11)
        return harness, [call() for _ in range(batches)]


def test_an_honest_solution_passes_every_chained_call():
    spec = _spec("int8-matmul")
    harness, timings = _timed(spec, spec.reference_code, batches=2)
    assert len(timings) == 2 and all(t.outside_ns > 0 for t in timings)
    assert harness.benchmark.batches == 2


def test_only_the_references_timed_outputs_go_unchecked():
    """grade() skips the checks of the reference's timed calls (our code; half a kernel grade's
    time): unchecked, a wrong solution's batch passes and this side draws no inputs, so a
    harness left checking is what stands between a candidate and a score."""
    spec = _spec("int8-matmul")
    wrong = (PROBLEMS_DIR / "int8-matmul" / "wrong" / "per_tensor_scale.py").read_text()
    harness, timings = _timed(spec, wrong, batches=1, checked=False)
    assert len(timings) == 1 and harness.benchmark.sets == []
    with pytest.raises(CandidateFailure) as failure:
        _timed(spec, wrong, batches=1)
    assert failure.value.verdict == "wrong_answer", failure.value.message
    assert KernelHarness(spec).checks_timed_outputs


CPU_ATTACKS = [
    pytest.param(slug, name, attack, id=f"{slug}:{name}")
    for slug, attacks in RUNTIME_ATTACKS.items()
    for name, attack in attacks.items()
    if not attack.gpu_only
]


@pytest.mark.slow
@pytest.mark.parametrize(("slug", "name", "attack"), CPU_ATTACKS)
def test_an_attack_past_the_source_rule_is_caught_at_run_time(slug, name, attack):
    spec = _spec(slug)
    with pytest.raises(CandidateFailure) as failure:
        _timed(spec, spec.reference_code + attack.suffix, batches=1)
    assert failure.value.verdict in attack.verdicts, failure.value.message
    assert "of batch 1" in failure.value.message


def test_the_chain_redraws_each_call_from_the_previous_output():
    """Each call's activations come from the digest of the output before it: two batches of
    the same solution draw different inputs, and the trusted side's copies follow them."""
    spec = _spec("int8-matmul")
    harness, _ = _timed(spec, spec.reference_code, batches=1)
    first = [s["x"].clone() for s in harness.benchmark.sets]
    harness_again, _ = _timed(spec, spec.reference_code, batches=1)
    again = [s["x"] for s in harness_again.benchmark.sets]
    assert not any(bool((a == b).all()) for a, b in zip(first, again, strict=True))


# Refuses to run a fourth time: one batch of the main chain is all it may see.
THREE_CALLS_ONLY = """
_Base = W8A16Linear
_calls = []


class W8A16Linear(_Base):
    def __call__(self, x):
        _calls.append(1)
        if len(_calls) > 3:
            raise RuntimeError("called after the main batch")
        return _Base.__call__(self, x)
"""


def test_the_overhead_is_the_same_batch_with_the_solution_left_out():
    spec = _spec("int8-matmul")
    harness = KernelHarness(spec)
    code = spec.reference_code + THREE_CALLS_ONLY
    with SandboxSession(KernelHarness, code, spec.entry_point, spec.limits) as session:
        session.start(harness.shared_bytes())
        harness.timed_call(session, seed=11)()
        overhead = harness.overhead_call(session, seed=11)
        assert overhead().outside_ns > 0 and overhead().outside_ns > 0
