"""The engine harnesses' greedy oracle lets rounding choose only where the choice is a tie.

A batch of other rows moves the tiny model's float32 logits by up to ~2e-5, so a correct
scheduler or allocator can meet a near-tied greedy token the other way round (once in CI:
"the reference solution failed: request 6: output token 22 differs"). Such a position is
recorded by the oracle; any other departure is still a wrong answer.
"""

import random

import pytest

from grader.harnesses import engine_run
from grader.harnesses.engine_run import ExpectedTokens, expected_tokens, outputs_mismatch

REQUESTS = [{"id": "a", "temperature": 0.0}, {"id": "b", "temperature": 0.0}]
EXPECTED = ExpectedTokens(
    {"a": [5, 6, 7, 8], "b": [1, 2, 3]}, {"a": frozenset({2}), "b": frozenset()}
)


def _outputs(a: list[int], b: list[int]) -> dict:
    return {"a": {"tokens": a, "error": None}, "b": {"tokens": b, "error": None}}


def test_an_output_that_departs_at_a_near_tie_is_right() -> None:
    assert outputs_mismatch(_outputs([5, 6, 9, 4], [1, 2, 3]), EXPECTED, REQUESTS) is None


def test_an_output_that_departs_anywhere_else_is_wrong() -> None:
    wrong = outputs_mismatch(_outputs([5, 9, 7, 8], [1, 2, 3]), EXPECTED, REQUESTS)
    assert wrong is not None and "request a: output token 1 differs" in wrong
    wrong = outputs_mismatch(_outputs([5, 6, 7, 8], [1, 2, 4]), EXPECTED, REQUESTS)
    assert wrong is not None and "request b: output token 2 differs" in wrong


def test_a_near_tie_does_not_excuse_a_wrong_length() -> None:
    wrong = outputs_mismatch(_outputs([5, 6, 9], [1, 2, 3]), EXPECTED, REQUESTS)
    assert wrong is not None and "3 tokens, expected 4" in wrong


def _requests(seed: int, temperature: float) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "id": f"r{i}",
            "prompt": [rng.randrange(engine_run.VOCAB_SIZE) for _ in range(rng.randint(3, 9))],
            "max_tokens": 4,
            "temperature": temperature,
            "seed": i,
        }
        for i in range(3)
    ]


@pytest.mark.parametrize(("gap", "recorded"), [(float("inf"), {0, 1, 2, 3}), (0.0, set())])
def test_the_oracle_records_the_positions_within_the_gap(
    monkeypatch: pytest.MonkeyPatch, gap: float, recorded: set[int]
) -> None:
    monkeypatch.setattr(engine_run, "NEAR_TIE_GAP", gap)
    # Each gap its own workload: the oracle remembers its last results by their arguments.
    expected = expected_tokens(_requests(int(gap != 0), 0.0), {"block_size": 4})
    assert set(expected) == {"r0", "r1", "r2"}
    assert all(expected.near_ties[rid] == recorded for rid in expected)


def test_a_sampled_request_has_no_near_ties() -> None:
    expected = expected_tokens(_requests(7, 1.0), {"block_size": 4})
    assert expected.near_ties == {}
