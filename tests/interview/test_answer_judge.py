"""The written-answer judge on whole answers: the tuning set by kind, bluffs, the misconception
guard, and `manage.py grade_answer`."""

import copy
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from interview import claims
from interview.design import load_design_prompts
from interview.judging import (
    KINDS,
    AnswerTarget,
    agreement_by_kind,
    answer_cases_load,
    target_judge,
)
from interview.rubric import VACUOUS_CAP

TUNING = Path(__file__).parent / "answer_cases" / "tuning.yaml"
AGREEMENT_GOAL = 0.9  # issue 17: at least 90% on each kind


@pytest.fixture(scope="module")
def tuning():
    cases = answer_cases_load(TUNING)
    return cases, agreement_by_kind(cases)


def test_tuning_set_covers_every_kind_and_design_prompt(tuning):
    cases, _ = tuning
    assert len(cases) >= 80
    assert len({c.target for c in cases}) >= 20
    assert Counter(c.kind for c in cases).keys() == set(KINDS)
    assert {c.target.design for c in cases if c.target.design} == {
        p.id for p in load_design_prompts()
    }
    assert all(not c.expected_pass for c in cases if c.kind in ("vacuous", "wrong"))
    assert all(c.expected_pass for c in cases if c.kind == "paraphrase")


@pytest.mark.parametrize("kind", KINDS)
def test_agreement_on_the_tuning_set_meets_the_goal(tuning, kind):
    row = tuning[1][kind]
    assert row.cases > 0
    assert row.agreement >= AGREEMENT_GOAL, row.disagreements


def test_vacuous_answers_score_at_most_the_cap(tuning):
    assert tuning[1]["vacuous"].max_score <= VACUOUS_CAP


def test_the_issues_keyword_salad_covers_nothing():
    verdict = target_judge(
        AnswerTarget(question="cb-priority-preempt"),
        "Queues. Priority. Preempt. Blocks. Budget. Recompute. Aging.",
    )
    assert verdict.grade.vacuous and verdict.grade.score <= VACUOUS_CAP
    assert not any(e.covered for e in verdict.grade.points)


def _design(prompt: str, section: str) -> AnswerTarget:
    return AnswerTarget(design=prompt, section=section)


# The three correct statements issue 17 found flagged as misconceptions.
CORRECT_LOOKALIKES = [
    (_design("tp2-vs-tp4", "throughput_model"), "mis_tp_linear",
     "Throughput scales sub-linearly with TP."),
    (_design("platform-100k-rps", "cache_strategy"), "mis_response_cache_is_prefix_cache",
     "A response cache for exact repeats is not a substitute for prefix caching."),
    (_design("max-throughput-x-gpus", "throughput_model"), "mis_decode_compute_bound",
     "Past the ridge point decode becomes compute bound."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("target", "misconception", "sentence"),
    CORRECT_LOOKALIKES,
    ids=["tp-sub-linear", "response-cache", "ridge-point"],
)
def test_a_correct_sentence_like_a_misconception_never_lowers_the_score(
    target, misconception, sentence
):
    alone = target_judge(target, sentence)
    assert misconception in [m.point_id for m in alone.grade.misconceptions]
    assert not any(m.covered for m in alone.grade.misconceptions)
    base = (
        "Decode is memory-bandwidth bound: every step reads all the weights from HBM. "
        "A larger batch raises throughput per GPU but each step takes longer, so TPOT rises."
    )
    assert target_judge(target, f"{base} {sentence}").grade.score >= (
        target_judge(target, base).grade.score
    )


@pytest.mark.parametrize(
    ("target", "misconception", "sentence"),
    [
        (_design("tp2-vs-tp4", "throughput_model"), "mis_tp_linear",
         "Tensor parallelism scales throughput linearly, since there is no communication cost."),
        (_design("platform-100k-rps", "cache_strategy"), "mis_response_cache_is_prefix_cache",
         "Caching final responses by the prompt's hash is the same as prefix caching."),
        (_design("max-throughput-x-gpus", "throughput_model"), "mis_decode_compute_bound",
         "Decode is compute-bound, so more FLOP/s means proportionally faster tokens."),
    ],
    ids=["tp-linear", "response-cache", "decode-compute"],
)  # fmt: skip
def test_the_misconceptions_themselves_are_still_caught(target, misconception, sentence):
    verdict = target_judge(target, sentence)
    stated = {m.point_id for m in verdict.grade.misconceptions if m.covered}
    assert misconception in stated


def test_a_fluent_wrong_answer_fails_where_its_correct_twin_passes():
    target = AnswerTarget(question="pd-why-memory-bound")
    right = target_judge(
        target,
        "Prefill runs all prompt tokens through each layer at once as large matrix multiplies, "
        "so it is compute-bound. Decode handles one token per sequence per step and must read "
        "all the weights from HBM each time, so its arithmetic intensity is far below the ridge "
        "point. Batching raises decode's intensity.",
    )
    wrong = target_judge(
        target,
        "Prefill runs all prompt tokens through each layer at once, so it is memory-bound. "
        "Decode is compute-bound because each token needs more FLOPs than prefill. Batching "
        "lowers decode's arithmetic intensity.",
    )
    assert right.passed and not wrong.passed


def _covered(target: AnswerTarget, text: str, point_id: str) -> bool:
    return next(
        e.covered for e in target_judge(target, text).grade.points if e.point_id == point_id
    )


KV_FORMULA = (
    "Per token the cache costs 2 × layers × KV heads × head dim × bytes per value, which for "
    "Llama-3-8B in BF16 is {}."
)


@pytest.mark.parametrize(
    ("figure", "covered"),
    [
        ("128 KiB", True),
        ("131,072 bytes", True),  # the same figure in other units
        ("128 MB", False),  # a unit prefix off
        ("12.8 KiB", False),  # an order of magnitude off
    ],
)
def test_a_number_the_point_states_must_be_right_not_just_near_in_words(figure, covered):
    target = AnswerTarget(question="kv-explain-memory-cost")
    assert _covered(target, KV_FORMULA.format(figure), "formula") is covered


def test_a_number_for_another_setup_contradicts_nothing():
    target = AnswerTarget(question="kv-explain-memory-cost")
    assert _covered(
        target, KV_FORMULA.replace("Llama-3-8B", "Llama-3-70B").format("320 KB"), "formula"
    )


def test_the_other_side_of_a_contrast_covers_nothing():
    target = AnswerTarget(question="smp-explain")
    assert _covered(
        target, "Top-k keeps only the k most likely tokens and samples among them.", "top-k"
    )
    assert not _covered(
        target, "Top-k keeps only the k least likely tokens and samples among them.", "top-k"
    )


def test_a_sentence_that_states_a_misconception_earns_no_point():
    target = AnswerTarget(question="pa-explain")
    right = "The attention kernel follows the block table to gather keys and values from blocks."
    wrong = (
        "The attention kernel follows the block table and skips low-scoring blocks, which is why "
        "paged attention reduces attention FLOPs."
    )
    assert _covered(target, right, "kernel")
    assert not _covered(target, wrong, "kernel")


# A fluent answer that names its topic and claims nothing (tuning3.yaml), and its correct twin.
FLUENT_VACUOUS_BACKPRESSURE = (
    "A streaming server has to deal with slow consumers, and backpressure is how it does that. "
    "The buffers, the engine and the connections have to work together so that things do not "
    "break when a client is slow."
)
CORRECT_BACKPRESSURE = (
    "Put a small fixed-capacity queue between the engine and each client connection. The engine "
    "writes tokens into it and moves on; it never waits on a socket. When a client's queue "
    "fills, we stop scheduling that sequence. A closed connection aborts the request and gives "
    "its KV blocks back."
)


def test_a_fluent_answer_that_says_nothing_scores_at_most_the_cap():
    target = AnswerTarget(question="sys-backpressure")
    vacuous = target_judge(target, FLUENT_VACUOUS_BACKPRESSURE)
    assert vacuous.grade.score <= VACUOUS_CAP and not vacuous.passed
    correct = target_judge(target, CORRECT_BACKPRESSURE)
    assert not correct.grade.vacuous and correct.passed


@pytest.mark.parametrize(
    ("question", "point", "right", "wrong"),
    [
        ("gk-online-softmax", "running-max",
         "For each query row we keep a running maximum of the scores seen so far.",
         "For each query row we keep a running minimum of the scores seen so far."),
        ("gk-online-softmax", "running-sum",
         "We keep a running sum of the exponentials as the softmax denominator.",
         "We keep a running product of the exponentials as the softmax denominator."),
        ("sd-walkthrough", "verify-one-pass",
         "The target model scores all the draft tokens in one forward pass.",
         "The target model scores the draft tokens in a separate forward pass each."),
    ],
    ids=["max-min", "sum-product", "one-pass"],
)  # fmt: skip
def test_an_inverted_relation_does_not_cover_the_point(question, point, right, wrong):
    target = AnswerTarget(question=question)
    assert _covered(target, right, point)
    assert not _covered(target, wrong, point)


@pytest.mark.parametrize(
    ("sentence", "nothing"),
    [
        ("It needs operations for handling the blocks.", True),
        ("Memory is what caps the batch.", True),
        ("Good observability helps the team find and fix problems quickly.", True),
        ("A free list holds the unused physical blocks; allocation pops one.", False),
        ("Each block holds 16 tokens.", False),  # a number is specific
        # Words of the design process and of judgement say nothing about serving.
        ("The team has to think carefully about the design so that it stays reliable.", True),
        ("The right techniques and tools make the allocator robust in production.", True),
        # A number states something, unless the question gave it.
        ("It has to handle what happens at 128 sequences.", True),
        ("It has to handle what happens at 256 sequences.", False),
    ],
)
def test_a_sentence_of_question_and_generic_words_says_nothing(sentence, nothing):
    question = (
        "Design the block allocator. What operations does it need? What caps the batch of 128 "
        "sequences?"
    )
    assert claims.says_nothing(sentence, question) is nothing


@pytest.mark.parametrize(
    ("point", "right", "wrong"),
    [
        # The point says "reject it early ... rather than queueing without limit".
        ("admission_control",
         "When capacity runs out, new requests are rejected early with a 429 and Retry-After.",
         "When capacity runs out, every request is queued without limit instead of being "
         "rejected."),
        ("capacity_headroom",
         "We size the fleet for peak traffic at about 75 percent utilisation, spread across zones.",
         "We size the fleet for peak traffic at about 75 percent utilisation, in a single zone."),
    ],
    ids=["what-the-point-rejects", "zones"],
)  # fmt: skip
def test_affirming_what_a_point_rejects_does_not_cover_it(point, right, wrong):
    target = _design("platform-100k-rps", "failure_modes")
    assert _covered(target, right, point)
    assert not _covered(target, wrong, point)


def test_the_third_tuning_set_is_labelled_by_kind():
    cases = answer_cases_load(TUNING.with_name("tuning3.yaml"))
    kinds = Counter(c.kind for c in cases)
    assert kinds["vacuous"] >= 10 and kinds["wrong"] >= 8 and kinds["paraphrase"] >= 8
    assert all(not c.expected_pass for c in cases if c.kind in ("vacuous", "wrong"))
    assert all(c.expected_pass for c in cases if c.kind == "paraphrase")
    earlier = {c.text for name in ("tuning.yaml", "tuning2.yaml", "tuning5.yaml")
               for c in answer_cases_load(TUNING.with_name(name))}  # fmt: skip
    assert not {c.text for c in cases} & earlier


def test_the_fourth_tuning_set_is_labelled_by_kind():
    cases = answer_cases_load(TUNING.with_name("tuning4.yaml"))
    kinds = Counter(c.kind for c in cases)
    assert len(cases) >= 40
    assert kinds["vacuous"] >= 10 and kinds["wrong"] >= 10 and kinds["paraphrase"] >= 10
    assert all(not c.expected_pass for c in cases if c.kind in ("vacuous", "wrong"))
    assert all(c.expected_pass for c in cases if c.kind == "paraphrase")
    assert any(c.target.design for c in cases) and any(c.target.question for c in cases)
    earlier = {c.text for name in ("tuning.yaml", "tuning2.yaml", "tuning3.yaml", "tuning5.yaml")
               for c in answer_cases_load(TUNING.with_name(name))}  # fmt: skip
    assert not {c.text for c in cases} & earlier


def test_the_second_tuning_set_is_labelled_by_kind():
    cases = answer_cases_load(TUNING.with_name("tuning2.yaml"))
    kinds = Counter(c.kind for c in cases)
    assert len(cases) >= 60 and kinds["wrong"] + kinds["paraphrase"] >= 50
    assert all(not c.expected_pass for c in cases if c.kind in ("vacuous", "wrong"))
    assert all(c.expected_pass for c in cases if c.kind == "paraphrase")
    assert not {c.text for c in cases} & {c.text for c in answer_cases_load(TUNING)}


# ---------------------------------------------------------------- manage.py grade_answer
# The command grades with the database's rubrics, as the pages do: its tests load the bank
# (the design prompts load with any database test).


def _run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("grade_answer", *args, stdout=out)
    return out.getvalue()


GOOD_KV = (
    "The KV cache keeps the key and value tensors of every previous token at each layer, so "
    "decode does not recompute the prefix each step. Per token it costs 2 x layers x KV heads x "
    "head dim x bytes, and it grows linearly with context length and batch size."
)


def test_command_prints_json_with_each_points_evidence(bank):
    data = json.loads(_run("--question", "kv-explain-memory-cost", "--text", GOOD_KV, "--json"))
    assert data["passed"] is True and data["score"] >= 0.6
    assert [p["id"] for p in data["points"]] == [
        "stores-kv",
        "avoids-recompute",
        "formula",
        "scales",
    ]
    assert all(set(p) >= {"id", "covered", "evidence"} for p in data["points"])
    assert all(p["evidence"] in GOOD_KV for p in data["points"] if p["covered"])
    assert data["misconceptions"] == []


def test_command_reads_a_file_and_prints_text(tmp_path, bank):
    answer = tmp_path / "answer.txt"
    answer.write_text("Queues. Priority. Preempt.")
    out = _run("--question", "cb-priority-preempt", "--file", str(answer))
    shown = re.match(r"cb-priority-preempt: score (\d\.\d\d), FAIL", out)
    assert shown and float(shown.group(1)) <= VACUOUS_CAP
    assert "vacuous" in out and "✗ queues" in out


def test_command_grades_design_sections_and_follow_ups(bank):
    section = json.loads(_run("--design", "max-throughput-x-gpus", "--section",
                              "throughput_model", "--text", "Decode is compute-bound.",
                              "--json"))  # fmt: skip
    assert section["passed"] is False
    assert [m["id"] for m in section["misconceptions"]] == ["mis_decode_compute_bound"]
    follow_up = json.loads(_run("--design", "tp2-vs-tp4", "--follow-up", "latency-sla",
                                "--text", "It does not change.", "--json"))  # fmt: skip
    assert [p["id"] for p in follow_up["points"]] == ["tp_tradeoff", "speculative_decoding"]


def test_command_batch_prints_one_result_per_line_in_order(tmp_path, bank):
    batch = tmp_path / "answers.jsonl"
    lines = [
        {"question": "kv-explain-memory-cost", "text": GOOD_KV},
        {"design": "tp2-vs-tp4", "section": "memory_model", "text": "Memory. KV."},
        {"design": "tp2-vs-tp4", "follow_up": "cross-node", "text": "All-reduce grows."},
    ]
    batch.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    results = [json.loads(line) for line in _run("--batch", str(batch)).splitlines()]
    assert [r["target"] for r in results] == [
        {"question": "kv-explain-memory-cost"},
        {"design": "tp2-vs-tp4", "section": "memory_model"},
        {"design": "tp2-vs-tp4", "follow_up": "cross-node"},
    ]
    assert [r["passed"] for r in results] == [True, False, False]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--question", "no-such-question", "--text", "x"], "no short-answer question"),
        (["--question", "pd-ridge-h100", "--text", "x"], "no short-answer question"),
        (["--design", "no-such-prompt", "--section", "memory_model", "--text", "x"],
         "no design prompt"),
        (["--design", "tp2-vs-tp4", "--section", "nope", "--text", "x"], "has no section 'nope'"),
        (["--design", "tp2-vs-tp4", "--follow-up", "nope", "--text", "x"],
         "has no follow-up 'nope'"),
        (["--question", "smp-explain"], "--text or --file"),
    ],
    ids=["unknown-question", "not-short-answer", "unknown-prompt", "unknown-section",
         "unknown-follow-up", "no-text"],
)  # fmt: skip
def test_command_refuses_unknown_ids_clearly(args, message, bank):
    with pytest.raises(CommandError, match=message):
        _run(*args)


def test_command_batch_names_the_bad_line(tmp_path, bank):
    batch = tmp_path / "answers.jsonl"
    batch.write_text(
        '{"question": "smp-explain", "text": "x"}\n{"question": "nope", "text": "y"}\n'
    )
    with pytest.raises(CommandError, match=r"answers.jsonl:2: no short-answer question 'nope'"):
        _run("--batch", str(batch))


def test_warm_judge_keeps_rubric_texts_that_a_later_start_reads_instead_of_computing(tmp_path):
    from interview import rubric
    from interview.judging import every_target, judge_warm_up

    targets = [t for t in every_target() if t.question][:1] + [
        t for t in every_target() if t.follow_up
    ][:1]
    path = tmp_path / "judge-embeddings.npz"
    rubric._CACHE.clear()
    rubric._references.cache_clear()
    assert judge_warm_up(path, keep=True, targets=targets) > 0
    rubric._CACHE.clear()
    rubric._references.cache_clear()
    assert rubric.embeddings_read(path) > 0
    # Everything the two rubrics need is read back: nothing is computed again.
    assert judge_warm_up(path, keep=False, targets=targets) == 0
    # What the file holds is rubric text, never the answer that warmed it up.
    kept = set(np.load(path)["sentences"].tolist())
    assert kept and not any("warm up" in s.lower() for s in kept)


def test_command_grades_with_the_rubric_an_author_edited_in_the_database(bank):
    """An admin edit changes what the pages grade against; the command must agree with them."""
    from interview.models import DesignPromptRow, Question

    row = DesignPromptRow.objects.get(prompt_id="tp2-vs-tp4")
    spec = copy.deepcopy(row.spec)
    section = spec["sections"]["memory_model"]
    section["rubric"] = {"points": [AUTHORS_POINT]}
    row.spec = spec
    row.save()
    question = Question.objects.get(bank_id="kv-explain-memory-cost")
    question.spec = question.spec | {
        "rubric": question.spec["rubric"] | {"points": [AUTHORS_POINT | {"keywords": []}]}
    }
    question.save()
    answer = "A replica's spare memory holds a cache of finished responses keyed by prompt."

    design = json.loads(_run("--design", "tp2-vs-tp4", "--section", "memory_model",
                             "--text", answer, "--json"))  # fmt: skip
    bank_question = json.loads(
        _run("--question", "kv-explain-memory-cost", "--text", answer, "--json")
    )

    for verdict in (design, bank_question):
        assert [p["id"] for p in verdict["points"]] == ["authors-response-cache"]
        assert verdict["points"][0]["covered"] and verdict["passed"]
    shipped = target_judge(
        AnswerTarget(design="tp2-vs-tp4", section="memory_model"), answer
    )  # the files, as the benchmarks read them, are untouched
    assert "authors-response-cache" not in [e.point_id for e in shipped.grade.points]


AUTHORS_POINT = {
    "id": "authors-response-cache",
    "text": "Spare memory holds a cache of whole responses keyed by the prompt.",
    "keywords": ["response cache|cache of finished responses"],
    "exemplars": ["Finished responses are cached in spare memory, keyed by their prompt."],
}
