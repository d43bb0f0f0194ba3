"""Training pairs for the claim reader experiment (train_reader.py), from the shipped rubrics.

    python benchmarks/claim_model/pairs.py var/claim_pairs.jsonl

One JSON object a line: {"premise", "hypothesis", "label", "group", "source"}; label 1 when the
premise states the hypothesis's claim, 0 when it does not (a near miss, the claim turned round,
a number slipped, another point, the question restated, topic words strung together). `group`
is the point's id, so a split by group keeps a point's pairs together. Deterministic: the same
rubrics give the same file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from interview import claims  # noqa: E402
from interview.rubric import Rubric, RubricPoint, split_sentences  # noqa: E402

# Word pairs beyond claims.CONTRASTS whose swap states a fact the wrong way round.
ANTONYMS = (
    ("increases", "decreases"),
    ("increase", "decrease"),
    ("more", "fewer"),
    ("more", "less"),
    ("higher", "lower"),
    ("larger", "smaller"),
    ("faster", "slower"),
    ("before", "after"),
    ("first", "last"),
    ("always", "never"),
    ("all", "none of the"),
    ("reads", "writes"),
    ("prefill", "decode"),
    ("memory", "compute"),
    ("latency", "throughput"),
    ("linear", "quadratic"),
    ("linearly", "quadratically"),
    ("weights", "activations"),
    ("keys", "queries"),
    ("cpu", "gpu"),
    ("hbm", "sram"),
    ("input", "output"),
    ("grows", "shrinks"),
    ("rises", "falls"),
    ("up", "down"),
    ("longer", "shorter"),
    ("cheaper", "more expensive"),
    ("small", "large"),
    ("short", "long"),
    ("bigger", "smaller"),
    ("most", "least"),
    ("maximum", "minimum"),
    ("per token", "per request"),
    ("same", "different"),
    ("exact", "approximate"),
    ("shared", "private"),
    ("lossless", "lossy"),
    ("idle", "busy"),
    ("bound", "free"),
    ("helps", "hurts"),
    ("improves", "worsens"),
    ("reduces", "raises"),
    ("lowers", "raises"),
    ("cuts", "doubles"),
    ("independent of", "proportional to"),
)
NEGATABLE = re.compile(r"\b(is|are|does|do|can|will|must|should|has to|have to)\b", re.IGNORECASE)
NEGATED = re.compile(
    r"\b(is|are|does|do|can|will|must|should) not\b|\b(isn't|aren't|doesn't|don't|can't|won't)\b",
    re.IGNORECASE,
)
NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)(?![\w.]*\d)")
FILLERS = (
    "{a} and {b} are both important here.",
    "It depends on {a}, {b} and the workload.",
    "The system should handle {a} efficiently using {b}.",
    "We need to think carefully about {a} and {b}.",
    "{a} matters a lot for {b} in practice.",
    "Good engineering of {a} and {b} is the key to performance.",
    "You have to balance {a} against {b} and monitor {c}.",
    "{a}, {b} and {c} all play a role.",
    "This is about {a}, {b} and {c}.",
    "There are trade-offs between {a} and {b}, so it needs tuning.",
)


def _swap_words(text: str, pairs) -> list[str]:
    out = []
    for left, right in pairs:
        for old, new in ((left, right), (right, left)):
            pattern = re.compile(rf"(?<![\w-]){re.escape(old)}(?![\w-])", re.IGNORECASE)
            match = pattern.search(text)
            if match:
                word = new[0].upper() + new[1:] if match.group(0)[0].isupper() else new
                out.append(text[: match.start()] + word + text[match.end() :])
    return out


def _negations(text: str) -> list[str]:
    if NEGATED.search(text):
        flipped = NEGATED.sub(
            lambda m: m.group(1) or m.group(2)[:-3].replace("ca", "can").replace("wo", "will"),
            text,
            count=1,
        )
        return [re.sub(r"\s+", " ", flipped)]
    match = NEGATABLE.search(text)
    if match:
        return [text[: match.end()] + " not" + text[match.end() :]]
    return []


def _number_slips(text: str, rng: random.Random) -> list[str]:
    out = []
    for match in NUMBER.finditer(text):
        raw = match.group(1).replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            continue
        if value in (0, 1):
            continue
        factor = rng.choice((10, 0.1, 2, 0.5, 4, 100))
        new = value * factor
        shown = f"{new:,.0f}" if new >= 10 and new == int(new) else f"{new:g}"
        out.append(text[: match.start()] + shown + text[match.end() :])
        if len(out) >= 2:
            break
    return out


def _salads(texts: list[str], question: str, rng: random.Random, count: int) -> list[str]:
    words = sorted(
        {w for t in texts for w in claims.content_words(t)} | claims.content_words(question)
    )
    words = [w for w in words if len(w) > 3]
    if len(words) < 3:
        return []
    out = []
    for _ in range(count):
        a, b, c = rng.sample(words, 3)
        style = rng.random()
        if style < 0.3:
            picked = rng.sample(words, min(len(words), rng.randint(4, 8)))
            out.append(". ".join(w.capitalize() for w in picked) + ".")
        elif style < 0.45:
            picked = rng.sample(words, min(len(words), rng.randint(4, 8)))
            out.append(", ".join(picked).capitalize() + ".")
        else:
            out.append(rng.choice(FILLERS).format(a=a, b=b, c=c).capitalize())
    return out


def _scramble(text: str, rng: random.Random) -> str:
    tokens = text.rstrip(".").split()
    if len(tokens) < 5:
        return ""
    rng.shuffle(tokens)
    return " ".join(tokens).capitalize() + "."


def point_pairs(
    point: RubricPoint,
    others: list[RubricPoint],
    misconceptions: list[RubricPoint],
    question: str,
    group: str,
    rng: random.Random,
):
    statements = list(dict.fromkeys([point.text, *point.exemplars]))
    hypotheses = statements[:4]
    negatives: list[tuple[str, str]] = []
    for near in point.near_misses:
        negatives.append((near, "near_miss"))
    for s in statements:
        for v in claims.contrast_swaps(s):
            negatives.append((v, "contrast"))
        for v in _swap_words(s, ANTONYMS)[:4]:
            negatives.append((v, "antonym"))
        for v in _negations(s):
            negatives.append((v, "negation"))
        for v in _number_slips(s, rng):
            negatives.append((v, "number"))
        scrambled = _scramble(s, rng)
        if scrambled:
            negatives.append((scrambled, "scrambled"))
    for other in others:
        for s in [other.text, *other.exemplars][:3]:
            negatives.append((s, "other_point"))
    for m in misconceptions:
        for s in [m.text, *m.exemplars][:2]:
            negatives.append((s, "misconception"))
    for sentence in split_sentences(question):
        negatives.append((sentence, "question"))
    for salad in _salads(statements, question, rng, 6):
        negatives.append((salad, "salad"))
    negatives = [(n, why) for n, why in dict.fromkeys(negatives) if n not in statements]
    rows = []
    for hypothesis in hypotheses:
        for premise in statements:
            if premise != hypothesis:
                rows.append((premise, hypothesis, 1, "statement"))
                rows.append((premise.lower().rstrip("."), hypothesis, 1, "statement_lower"))
        for premise, why in negatives:
            rows.append((premise, hypothesis, 0, why))
    # Candidates write long sentences: a claim joined to another point's claim still states
    # it, and a near miss joined to a correct claim still does not.
    for other in others[:3]:
        joined = other.text[0].lower() + other.text[1:].rstrip(".")
        for s in statements[:2]:
            rows.append((f"{s.rstrip('.')}, and {joined}.", point.text, 1, "compound"))
            rows.append(
                (f"{other.text.rstrip('.')}; {s[0].lower() + s[1:]}", point.text, 1, "compound")
            )
        for near in point.near_misses[:2]:
            rows.append((f"{near.rstrip('.')}, and {joined}.", point.text, 0, "compound_near_miss"))
    if len(statements) == 1:  # a lone statement still teaches that it states itself
        rows += [(statements[0], statements[0], 1, "self")]
    return [
        {"premise": p, "hypothesis": h, "label": label, "group": group, "source": why}
        for p, h, label, why in rows
    ]


def rubric_pairs(rubric: Rubric, question: str, group: str, rng: random.Random):
    rows = []
    for point in rubric.points:
        others = [p for p in rubric.points if p is not point]
        rows += point_pairs(
            point, others, list(rubric.misconceptions), question, f"{group}:{point.id}", rng
        )
    for m in rubric.misconceptions:
        # A misconception is a claim too: its exemplars state it, its near misses (the correct
        # statements that sound alike) do not.
        rows += point_pairs(m, list(rubric.points), [], question, f"{group}:{m.id}", rng)
    return rows


def every_rubric():
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interview.settings")

    django.setup()
    from interview.design import load_design_prompts
    from interview.grading import _rubric_for
    from interview.question_bank import bank_read, template_render
    from interview.rubric import rubric_with_model_answer

    for q in bank_read():
        spec = q.spec
        if spec["type"] != "short_answer":
            continue
        rubric = rubric_with_model_answer(_rubric_for(spec), spec["model_answer"])
        yield spec["id"], rubric, template_render(spec["prompt"], {})
    for prompt in load_design_prompts():
        for s in prompt.sections:
            question = s.question if "{" not in s.question else ""
            yield f"{prompt.id}/{s.name}", s.rubric, question
        for f in prompt.follow_ups:
            question = f.prompt if "{" not in f.prompt else ""
            yield f"{prompt.id}/{f.id}", f.rubric, question


def labelled_point_cases():
    """The tune half of tests/interview/rubric_cases.yaml: one sentence, one point, labelled."""
    import yaml

    from interview.design import shared_points

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "tests/interview/rubric_cases.yaml").read_text())
    from interview.rubric import rubric_point_from_dict

    points = {k: rubric_point_from_dict(v) for k, v in shared_points().items()}
    rows = []
    for case in data["cases"]:
        if case["split"] != "tune" or case["point"] not in points:
            continue
        point = points[case["point"]]
        for hypothesis in [point.text, *point.exemplars][:3]:
            rows.append(
                {
                    "premise": case["answer"],
                    "hypothesis": hypothesis,
                    "label": int(case["covered"]),
                    "group": f"cases:{case['point']}",
                    "source": "rubric_case",
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    rng = random.Random(17)
    rows = []
    for group, rubric, question in every_rubric():
        rows += rubric_pairs(rubric, question, group, rng)
    rows += labelled_point_cases()
    seen, unique = set(), []
    for row in rows:
        key = (row["premise"], row["hypothesis"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for row in unique:
            f.write(json.dumps(row) + "\n")
    from collections import Counter

    print(
        len(unique),
        "pairs;",
        Counter(r["source"] for r in unique),
        Counter(r["label"] for r in unique),
    )


if __name__ == "__main__":
    main()
