"""The written-answer judge's verdict: from what the rubric matcher found to pass or fail.

The matcher (interview/rubric.py) decides point by point, on a cosine to each point's statements.
Alone, that share of points covered cannot tell a fluent wrong answer from a right one (MiniLM
puts "decode is compute-bound" next to "decode is memory-bound") nor a paraphrase from a bluff
near the threshold. The verdict reads the whole answer's signals at once: how much of the rubric
it covers and how firmly, and how much of what it claims goes against the rubric (claims whose
nearest rubric statement they contradict, claims nearer a known wrong twin than to any correct
statement, a misconception stated). A logistic model weighs them; its weights are fitted on the
labelled answers of tests/interview/answer_cases/ (`manage.py fit_judge`) and kept in
`judge_verdict.json`, never on the held-out set the agreement is reported on.

The probability of a pass is mapped onto the score scale so that 0.5 sits on the question's pass
mark: the score stays "at least the pass mark means pass" for every caller. Length is not a
signal: a longer answer is not a better one, and a bluff can always be longer.

Plain Python and numpy: no Django, no embedding model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np

WEIGHTS_FILE = Path(__file__).with_name("judge_verdict.json")
# L2 strength on standardised signals: a few hundred labelled answers fit eight weights, so
# keep them small (chosen by leave-one-set-out agreement; `manage.py fit_judge` prints it).
L2_PENALTY = 10.0
# Within this of one half the verdict is no better than a coin (measured on the tuning sets
# left out one at a time: 10 of 19 right there, 20 of 24 one band further); the judge then
# says it is not sure and asks the candidate to check their answer against the rubric.
UNSURE_BAND = 0.1
# Signals whose weight must not be negative (more coverage never hurts) or positive (more claims
# against the rubric never help); a fit that breaks this has learnt an artefact of its data.
COVERAGE_SIGNALS = ("coverage", "covered_firmly", "covered_strongly", "best_two", "mean_strength")
AGAINST_SIGNALS = ("misconception", "contradicting", "near_missing")


@dataclass(frozen=True)
class Signals:
    """What the matcher found in one answer, each in [0, 1]."""

    # Share of the rubric's point weight covered, less misconceptions (the matcher's own score).
    coverage: float
    # Share of point weight whose evidence is at least FIRM (or STRONG) in strength.
    covered_firmly: float
    covered_strongly: float
    # Mean strength of the two strongest points' evidence, and of every point's.
    best_two: float
    mean_strength: float
    # 1 when the answer states one of the rubric's misconceptions.
    misconception: float
    # Share of the answer's claims whose nearest rubric statement they contradict.
    contradicting: float
    # Share of the answer's claims nearer a point's wrong twin than to any statement they may match.
    near_missing: float

    def vector(self) -> np.ndarray:
        return np.array(astuple(self), dtype=np.float64)


SIGNAL_NAMES = tuple(f.name for f in fields(Signals))


@dataclass(frozen=True)
class VerdictModel:
    """Logistic weights over standardised signals."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    trained_on: tuple[str, ...] = ()
    cases: int = 0

    def logit(self, signals: Signals) -> float:
        z = (signals.vector() - np.array(self.mean)) / np.array(self.scale)
        return float(z @ np.array(self.weights) + self.bias)

    def probability(self, signals: Signals) -> float:
        """The probability that a careful grader passes the answer."""
        return 1.0 / (1.0 + math.exp(-self.logit(signals)))

    def as_dict(self) -> dict[str, object]:
        return {
            "signals": list(SIGNAL_NAMES),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "trained_on": list(self.trained_on),
            "cases": self.cases,
        }


def model_from_dict(data: dict[str, object]) -> VerdictModel:
    if list(data["signals"]) != list(SIGNAL_NAMES):  # type: ignore[call-overload]
        raise ValueError(f"verdict weights are for signals {data['signals']}, not {SIGNAL_NAMES}")
    return VerdictModel(
        tuple(data["mean"]),  # type: ignore[arg-type]
        tuple(data["scale"]),  # type: ignore[arg-type]
        tuple(data["weights"]),  # type: ignore[arg-type]
        float(data["bias"]),  # type: ignore[arg-type]
        tuple(data.get("trained_on", ())),  # type: ignore[arg-type]
        int(data.get("cases", 0)),  # type: ignore[call-overload]
    )


@cache
def shipped_model() -> VerdictModel:
    """The weights `manage.py fit_judge` wrote next to this module."""
    return model_from_dict(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8")))


def model_write(model: VerdictModel, path: Path = WEIGHTS_FILE) -> None:
    path.write_text(json.dumps(model.as_dict(), indent=2) + "\n", encoding="utf-8")


def score_from_probability(probability: float, pass_score: float) -> float:
    """Map a pass probability onto [0, 1] piecewise linearly, 0.5 landing on `pass_score`."""
    if probability < 0.5:
        return pass_score * probability / 0.5
    return pass_score + (1.0 - pass_score) * (probability - 0.5) / 0.5


def fit(
    signals: Sequence[Signals],
    passed: Sequence[bool],
    l2_penalty: float = L2_PENALTY,
    trained_on: Sequence[str] = (),
) -> VerdictModel:
    """L2-regularised logistic regression by Newton's method (the bias is not penalised)."""
    if len(signals) != len(passed) or not signals:
        raise ValueError(f"{len(signals)} signal rows for {len(passed)} labels")
    x = np.stack([s.vector() for s in signals])
    y = np.array(passed, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = np.full(z.shape[1], l2_penalty)
    penalty[-1] = 0.0
    theta = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(z @ theta)))
        gradient = z.T @ (p - y) + penalty * theta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return VerdictModel(
        tuple(float(m) for m in mean),
        tuple(float(s) for s in scale),
        tuple(float(w) for w in theta[:-1]),
        float(theta[-1]),
        tuple(trained_on),
        len(signals),
    )


def sign_violations(model: VerdictModel) -> list[str]:
    """Signals whose fitted weight points the wrong way (see COVERAGE_SIGNALS)."""
    weights = dict(zip(SIGNAL_NAMES, model.weights, strict=True))
    return [n for n in COVERAGE_SIGNALS if weights[n] < 0] + [
        n for n in AGAINST_SIGNALS if weights[n] > 0
    ]
