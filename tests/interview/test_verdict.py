"""The judge's verdict (interview/verdict.py): the fit, the score it maps to, the shipped weights
and what they were fitted on, and claims that go against the rubric."""

from __future__ import annotations

import random

import pytest
import yaml

from interview import verdict
from interview.judging import ANSWER_CASES, AnswerTarget, target_judge, tuning_case_files
from interview.verdict import SIGNAL_NAMES, Signals


def _signals(coverage: float, against: float = 0.0) -> Signals:
    return Signals(
        coverage=coverage,
        covered_firmly=coverage * 0.8,
        covered_strongly=coverage * 0.5,
        best_two=0.3 + 0.4 * coverage,
        mean_strength=0.2 + 0.4 * coverage,
        misconception=0.0,
        contradicting=against,
        near_missing=against / 2,
    )


def test_the_fit_learns_that_coverage_passes_and_contradictions_fail():
    rng = random.Random(7)
    rows, labels = [], []
    for _ in range(300):
        coverage, against = rng.random(), rng.random() * 0.5
        rows.append(_signals(coverage, against))
        labels.append(coverage - against > 0.45)
    model = verdict.fit(rows, labels)
    assert verdict.sign_violations(model) == []
    assert model.probability(_signals(0.95)) > 0.9
    assert model.probability(_signals(0.1)) < 0.1
    assert model.probability(_signals(0.9, 0.5)) < model.probability(_signals(0.9, 0.0))
    assert model.cases == 300


def test_the_fit_refuses_rows_without_labels():
    with pytest.raises(ValueError, match="2 signal rows for 1 labels"):
        verdict.fit([_signals(0.5), _signals(0.6)], [True])


def test_a_weight_pointing_the_wrong_way_is_reported():
    n = len(SIGNAL_NAMES)
    weights = [-1.0 if name in verdict.AGAINST_SIGNALS else 1.0 for name in SIGNAL_NAMES]
    weights[SIGNAL_NAMES.index("contradicting")] = 0.5  # a contradiction helping a pass
    weights[SIGNAL_NAMES.index("covered_firmly")] = -0.5  # firm coverage hurting it
    model = verdict.VerdictModel((0.0,) * n, (1.0,) * n, tuple(weights), 0.0)
    assert verdict.sign_violations(model) == ["covered_firmly", "contradicting"]


@pytest.mark.parametrize("pass_score", [0.5, 0.6, 0.7])
def test_a_probability_of_one_half_lands_on_the_pass_mark(pass_score):
    to_score = verdict.score_from_probability
    assert to_score(0.5, pass_score) == pytest.approx(pass_score)
    assert to_score(0.0, pass_score) == 0.0 and to_score(1.0, pass_score) == pytest.approx(1.0)
    scores = [to_score(p / 20, pass_score) for p in range(21)]
    assert scores == sorted(scores)
    assert all((s >= pass_score) == (p >= 10) for p, s in enumerate(scores))


def test_the_shipped_weights_were_fitted_on_the_tuning_sets_only():
    model = verdict.shipped_model()
    files = tuning_case_files()
    assert [f.name for f in files] == list(model.trained_on)
    assert not [f for f in files if "heldout" in f.name]
    assert model.cases == sum(len(yaml.safe_load(f.read_text())) for f in files)
    assert verdict.sign_violations(model) == []


def test_no_held_out_answer_is_in_a_tuning_set():
    held_out = {c["text"] for c in yaml.safe_load((ANSWER_CASES / "heldout2.yaml").read_text())}
    tuning = {c["text"] for f in tuning_case_files() for c in yaml.safe_load(f.read_text())}
    assert held_out and not held_out & tuning


TARGET = AnswerTarget(question="pd-why-memory-bound")
RIGHT = (
    "Prefill runs all prompt tokens through each layer at once as large matrix multiplies, so it "
    "is compute-bound. Decode handles one token per sequence per step and must read all the "
    "weights from HBM each time, so its arithmetic intensity is far below the ridge point."
)
INVERTED = "Batching reduces decode's arithmetic intensity."


def test_a_claim_against_the_rubric_is_named_and_lowers_the_score():
    right = target_judge(TARGET, RIGHT)
    assert right.passed and right.grade.contradictions == ()
    with_inverted = target_judge(TARGET, f"{RIGHT} {INVERTED}")
    assert INVERTED in with_inverted.grade.contradictions
    assert with_inverted.grade.score < right.grade.score
    assert with_inverted.as_dict()["contradictions"] == [INVERTED]


def test_a_correct_claim_added_is_not_against_the_rubric():
    correct = "Batching more sequences raises decode's arithmetic intensity."
    graded = target_judge(TARGET, f"{RIGHT} {correct}")
    assert graded.grade.contradictions == ()
    assert graded.grade.score >= target_judge(TARGET, RIGHT).grade.score


def test_a_sentence_pasted_again_and_again_does_not_dilute_a_wrong_one():
    wrong = (
        "Prefill is memory-bound. Decode is compute-bound because each token needs more FLOPs "
        "than prefill. Batching lowers decode's arithmetic intensity."
    )
    filler = " Decode handles one token per sequence per step."
    once = target_judge(TARGET, wrong + filler)
    pasted = target_judge(TARGET, wrong + filler * 10)
    assert once.grade.signals.contradicting > 0
    assert pasted.grade.signals == once.grade.signals
    assert pasted.grade.score == pytest.approx(once.grade.score) and not pasted.passed
