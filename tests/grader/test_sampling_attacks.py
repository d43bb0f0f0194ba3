"""Attacks on the sampler and verifier problems, each with the control that stops it.

Every submission in the problems' ``cheats/`` folders was accepted by the harness that believed
its sandbox (or checked only the support of the timed tokens); each must now get the verdict
it deserves, with a message that names the fault. Beside them, the honest float32 verifier
that the timed calls' missing rounding margin failed at random must be accepted every time.
"""

from __future__ import annotations

import dataclasses

import pytest

from grader.bank import PROBLEMS_DIR
from grader.grading import grade
from grader.harnesses.base import CandidateFailure
from grader.harnesses.contract import Verdict
from tests.grader.test_engine_problems import _grade, spec_of

# (problem, submission, verdict, words of the message: the test that caught it and why)
ATTACKS = [
    # timed calls were checked for the support only: every timed token is now the one its
    # uniform selects
    (
        "batched-sampler",
        "cheats/argmax_on_benchmark.py",
        Verdict.WRONG_ANSWER,
        "timed call 1 was wrong: sample() row",
    ),
    # the distribution was tested at two settings: every test now checks each token against
    # its uniform, at temperatures 0.3 to 1.6 and every filter combination
    (
        "batched-sampler",
        "cheats/forgets_temperature.py",
        Verdict.WRONG_ANSWER,
        "temperature-only: sample() row",
    ),
    ("batched-sampler", "cheats/skips_top_p_near_one.py", Verdict.WRONG_ANSWER, "top_p 0.99"),
    (
        "batched-sampler",
        "cheats/skips_min_p_under_top_k.py",
        Verdict.WRONG_ANSWER,
        "the sampler drew token",
    ),
    # tied logits: the kept set and the first argmax are checked token by token
    ("batched-sampler", "cheats/top_k_without_ties.py", Verdict.WRONG_ANSWER, "ties: sample() row"),
    (
        "batched-sampler",
        "cheats/greedy_last_argmax.py",
        Verdict.WRONG_ANSWER,
        "(temperature 0, greedy): drew token",
    ),
    # the sandbox's serve is the candidate's: nothing it says is read, only the tensors
    # written where the trusted side poisoned them, judged there
    (
        "batched-sampler",
        "cheats/forged_serve.py",
        Verdict.WRONG_ANSWER,
        "temperature-only: probs row",
    ),
    ("spec-verifier", "cheats/forged_figures.py", Verdict.WRONG_ANSWER, "one-draft-token: row"),
    # a judge that checked only validity accepted a valid token per state, tabled once
    (
        "grammar-sampler",
        "cheats/first_allowed_token.py",
        Verdict.WRONG_ANSWER,
        "number-any-state: sample() row",
    ),
    # the automaton in the sandbox's memory is a copy: the judge checks against its own
    (
        "grammar-sampler",
        "cheats/rewrites_fsm.py",
        Verdict.WRONG_ANSWER,
        "allows token 0 (EOS), which the grammar does not allow there (the state does not",
    ),
    # the engine's own implementations are not in the sandbox
    (
        "batched-sampler",
        "cheats/imports_engine_sampler.py",
        Verdict.RUNTIME_ERROR,
        "No module named 'engine.topk_topp_sampler'",
    ),
    (
        "spec-verifier",
        "cheats/imports_engine_verifier.py",
        Verdict.RUNTIME_ERROR,
        "No module named 'engine.rejection_sampler'",
    ),
]
# Graded this many times: the timed calls failed it in two of six grades before. After the
# first, whole grade, the others run the tests of exact rows and the timed calls only (the
# stages that judge rows where float32 rounding may choose), at a quarter of the cost.
HONEST_GRADES = 6


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slug", "submission", "verdict", "words"),
    ATTACKS,
    ids=[f"{slug}:{submission}" for slug, submission, _, _ in ATTACKS],
)
def test_attack_gets_the_verdict_it_deserves(
    slug: str, submission: str, verdict: Verdict, words: str
) -> None:
    report = _grade(slug, (PROBLEMS_DIR / slug / submission).read_text())
    assert report.verdict is verdict, report.message
    assert words in report.message
    assert report.score == 0.0 and report.policy is None


def test_every_cheat_is_in_the_suite() -> None:
    shipped = {
        (folder.parent.name, f"cheats/{path.name}")
        for folder in PROBLEMS_DIR.glob("*/cheats")
        if folder.parent.name in ("batched-sampler", "spec-verifier", "grammar-sampler")
        for path in folder.glob("*.py")
    }
    assert shipped == {(slug, submission) for slug, submission, _, _ in ATTACKS}


@pytest.mark.slow
def test_honest_float32_verifier_is_accepted_every_time() -> None:
    code = (PROBLEMS_DIR / "spec-verifier" / "solutions" / "float32_ratio.py").read_text()
    whole = spec_of("spec-verifier")
    exact_rows = dataclasses.replace(
        whole, tests=[test for test in whole.tests if test.get("mode") == "exact"]
    )
    for seed in range(HONEST_GRADES):
        report = grade(whole if seed == 0 else exact_rows, code, seed=seed, hardware={})
        assert report.verdict is Verdict.ACCEPTED, report.message
        assert report.score > 0


@pytest.mark.parametrize(
    ("kind", "interfaces", "implementations"),
    [
        ("sampler", {"engine/sampler.py"}, ("TopKTopPSampler",)),
        ("verifier", {"engine/sampler.py", "engine/spec_decode.py"}, ("RejectionSampler",)),
        ("grammar", {"engine/sampler.py", "engine/grammar.py"}, ("_Parser", "TopKTopPSampler")),
    ],
)
def test_sandbox_sees_the_interfaces_only(
    kind: str, interfaces: set[str], implementations: tuple[str, ...]
) -> None:
    from grader.harnesses import harness_get
    from grader.sandbox import PROJECT_ROOT, sandbox_code_paths

    paths = harness_get(kind).sandbox_paths
    assert set(paths) == {"engine/__init__.py", "engine/config.py"} | interfaces
    for path in map(PROJECT_ROOT.joinpath, sandbox_code_paths(paths)):
        for file in path.glob("**/*.py") if path.is_dir() else [path]:
            source = file.read_text()
            assert not any(f"class {name}(" in source for name in implementations), file


def _solution(slug: str, path: str, name: str):
    namespace: dict = {}
    exec((PROBLEMS_DIR / slug / path).read_text(), namespace)
    return namespace[name]()


def test_float32_verifier_differs_from_the_rule_only_where_rounding_allows() -> None:
    """The worked example with a uniform exactly at p / q = 0.5: `u <= p / q` accepts, the
    float64 rule `u * q < p` rejects; that row is not judged, and a row that is wrong where no
    rounding reaches still fails."""
    import torch

    from grader.harnesses.engine_verifier import VerifierHarness
    from tests.grader.test_engine_problems import spec_of

    harness = VerifierHarness(spec_of("spec-verifier"))
    draft_tokens = torch.tensor([[0, 2]] * 2)
    q = torch.tensor([[[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]] * 2)
    p = torch.tensor([[[0.3, 0.5, 0.2], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]]] * 2)
    uniforms = torch.tensor([[0.5, 0.9, 0.7], [0.4, 0.9, 0.7]], dtype=torch.float64)
    inputs = (draft_tokens, q, p, uniforms)
    tokens, accepted = _solution(
        "spec-verifier", "solutions/float32_ratio.py", "SpecVerifier"
    ).verify(*inputs)
    rule_tokens, rule_accepted, ambiguous = harness.verify_expected(*inputs)
    assert accepted.tolist() == [2, 2] and rule_accepted.tolist() == [0, 2]
    assert ambiguous.tolist() == [True, False]
    assert harness._check(tokens, accepted, inputs, "") == 1
    tokens[1, 2] = 0  # the bonus token, where no rounding reaches
    with pytest.raises(CandidateFailure, match="row 1: returned tokens"):
        harness._check(tokens, accepted, inputs, "")


def test_sampler_token_at_a_bin_edge_is_not_judged() -> None:
    """Logits [0, 0, 0, 0] at temperature 1: the bins are quarters. A uniform of exactly 0.5
    lies on an edge (either neighbour may be drawn); 0.6 selects token 2 and nothing else."""
    import torch

    from grader.harnesses.engine_sampler import SamplerHarness
    from tests.grader.test_engine_problems import spec_of

    harness = SamplerHarness(spec_of("batched-sampler"))
    logits = torch.zeros(2, 4)
    packed = torch.tensor(
        [[1.0, 1.0], [0, 0], [1.0, 1.0], [0.0, 0.0], [0.5, 0.6]], dtype=torch.float64
    )
    tokens, _, judged = harness.sample_expected(logits, packed[:4].T, packed[4])
    assert tokens.tolist() == [2, 2] and judged.tolist() == [False, True]
    assert harness._check_tokens(torch.tensor([1, 2]), logits, packed, "") == 1
    with pytest.raises(CandidateFailure, match=r"uniform 0.600000 selects token 2, whose bin"):
        harness._check_tokens(torch.tensor([1, 3]), logits, packed, "")


def test_a_filter_decision_within_rounding_may_go_either_way() -> None:
    """Top-p 0.9 over [0.6, 0.3, 0.1 + 2e-5] (normalised): the last token's ascending
    cumulative probability is 1.8e-5 above 1 - top_p, inside float32's rounding of that sum,
    so a sampler may keep it (uniform 0.95 selects token 2) or drop it (token 1); token 0 is
    wrong either way."""
    import numpy as np
    import torch

    from grader.harnesses.engine_sampler import SamplerHarness
    from tests.grader.test_engine_problems import spec_of

    harness = SamplerHarness(spec_of("batched-sampler"))
    logits = torch.tensor(np.log([[0.6, 0.3, 0.10002]] * 3), dtype=torch.float32)
    packed = torch.tensor([[1.0] * 3, [0] * 3, [0.9] * 3, [0] * 3, [0.95] * 3], dtype=torch.float64)
    packed[2] = packed[2].float().double()  # top_p as the sampler sees it
    tokens, allowed, judged = harness.sample_expected(logits, packed[:4].T, packed[4])
    assert tokens.tolist() == [2, 2, 2] and judged.all()
    assert [set(row) for row in allowed.tolist()] == [{1, 2}] * 3
    assert harness._check_tokens(torch.tensor([2, 1, 2]), logits, packed, "") == 3
    with pytest.raises(CandidateFailure, match=r"selects token 2 \(or \[1\], which rounding"):
        harness._check_tokens(torch.tensor([2, 1, 0]), logits, packed, "")


@pytest.mark.parametrize("late", [False, True], ids=["answered-in-time", "written-after-reply"])
def test_the_sandbox_is_frozen_around_an_exchange(late: bool) -> None:
    """No thread of the candidate's may start on the inputs before the trusted clock does, nor
    finish an output after the reply: the sandbox is frozen while the inputs are written (the
    call wakes it inside the clock's window) and again at the reply, and an output that changed
    in between (here written as the sandbox was frozen) is `policy`."""
    import mmap

    from grader.harnesses.engine_sampler import Sampled, SamplerHarness, batch_inputs
    from grader.harnesses.remote import Slot
    from tests.grader.test_engine_problems import spec_of

    harness = SamplerHarness(spec_of("batched-sampler"))
    case = harness.spec.benchmark | {"vocab": 100}
    logits, packed = batch_inputs(case, seed=1)
    tokens, _, _ = harness.sample_expected(logits, packed[:4].T, packed[4])
    events, places = [], []

    class Sandbox:
        shared = mmap.mmap(-1, 1 << 20)

        def inputs_in_memory(self) -> bool:
            return self.shared[: logits.nbytes] == logits.numpy().tobytes()

        def answer(self) -> None:
            slot = Slot.from_json(places[0]["tokens"])
            self.shared[slot.offset : slot.offset + slot.nbytes] = tokens.tobytes()

        def freeze(self) -> None:
            events.append(("frozen", self.inputs_in_memory()))
            if late and places:
                self.answer()

        def call(self, request, timeout_s):
            events.append(("woken and asked", self.inputs_in_memory()))
            places.extend(request["calls"])
            if not late:
                self.answer()
            return {"ok": True, "errors": [None]}, 1

    sampled = Sampled()
    if late:
        with pytest.raises(CandidateFailure, match="still being written after the call returned"):
            harness.sample_checked(Sandbox(), case, [(logits, packed)], False, sampled)
    else:
        harness.sample_checked(Sandbox(), case, [(logits, packed)], False, sampled)
        assert sampled.tokens[0].tolist() == tokens.tolist()
    assert events == [("frozen", False), ("woken and asked", True), ("frozen", True)]
