"""The bank file itself must not give choice answers away: not by position, not by length.

Options are shuffled per attempt, but the YAML is also exported and read; a candidate who
learnt "the first option" or "the longest option" must do no better than chance.
"""

from __future__ import annotations

from collections import Counter

import pytest

from interview.question_bank import bank_read, choice_stats

BANK = [q.spec for q in bank_read()]
STATS = choice_stats(BANK)
SINGLE = [s for s in BANK if s["type"] == "single_choice"]
MULTIPLE = [s for s in BANK if s["type"] == "multiple_choice"]
# Four options put the right one first or longest a quarter of the time by chance; above this
# share the layout is a tell.
MAX_SHARE = 0.40
# Below this share the opposite rule ("never the longest") would be a tell.
MIN_SHARE = 0.10


def _spec(choices: list[str], answer) -> dict:
    qtype = "multiple_choice" if isinstance(answer, list) else "single_choice"
    return {"type": qtype, "choices": choices, "answer": answer}


def test_the_bank_has_choice_questions_of_both_kinds():
    assert (STATS.single, STATS.multiple) == (len(SINGLE), len(MULTIPLE))
    assert STATS.single >= 60 and STATS.multiple >= 10


def test_the_right_option_is_first_in_at_most_40_percent_of_the_bank():
    assert STATS.right_first / STATS.questions <= MAX_SHARE


def test_the_right_option_is_longest_in_at_most_40_percent_of_the_bank():
    assert STATS.right_longest / STATS.questions <= MAX_SHARE


@pytest.mark.parametrize("kind", ["longest", "shortest"])
def test_length_is_no_tell_either_way(kind):
    share = getattr(STATS, f"right_{kind}") / STATS.questions
    assert MIN_SHARE <= share <= MAX_SHARE


def test_single_choice_answers_are_spread_over_every_position():
    positions = STATS.single_answer_positions
    assert set(positions) == {0, 1, 2, 3}
    assert max(positions.values()) / STATS.single <= MAX_SHARE
    assert min(positions.values()) / STATS.single >= MIN_SHARE


def test_multiple_choice_answers_do_not_all_start_at_the_same_position():
    starts = STATS.multiple_answer_starts
    assert len(starts) > 1
    sets = Counter(tuple(s["answer"]) for s in MULTIPLE)
    assert max(sets.values()) / len(MULTIPLE) <= MAX_SHARE


def test_every_multiple_choice_prompt_says_to_select_all():
    assert [s["id"] for s in MULTIPLE if "select all that apply" not in s["prompt"].lower()] == []


def test_no_right_option_stands_out_by_length():
    """A right option far longer than every distractor is a tell even when it is rare."""
    for spec in SINGLE + MULTIPLE:
        right = spec["answer"] if isinstance(spec["answer"], list) else [spec["answer"]]
        lengths = [len(c) for c in spec["choices"]]
        longest_wrong = max(n for i, n in enumerate(lengths) if i not in right)
        assert all(lengths[i] <= 1.5 * longest_wrong + 10 for i in right), spec["id"]


@pytest.mark.parametrize(
    ("choices", "answer", "first", "longest", "shortest"),
    [
        (["aaaa", "b", "cc", "ddd"], 0, 1, 1, 0),
        (["aaa", "bbbb", "cc", "bbbb"], 1, 0, 1, 0),
        (["aa", "bb", "cc", "dd"], 2, 0, 0, 0),
        (["a", "bb", "cc", "dd"], 0, 1, 0, 1),
        (["a", "bbbb", "ccc", "dd"], [0, 1], 1, 0, 0),
        (["a", "bbbb", "ccc", "dd"], [1, 2], 0, 1, 0),
        (["aaa", "bb", "cc", "dddd"], [1, 2], 0, 0, 1),
    ],
    ids=[
        "first-and-longest",
        "tie-at-the-top-counts",
        "equal-lengths-tell-nothing",
        "first-and-shortest",
        "multiple-first-positions",
        "multiple-longest-pair",
        "multiple-shortest-pair",
    ],
)
def test_how_the_statistics_count(choices, answer, first, longest, shortest):
    stats = choice_stats([_spec(choices, answer)])
    assert (stats.right_first, stats.right_longest, stats.right_shortest) == (
        first,
        longest,
        shortest,
    )
