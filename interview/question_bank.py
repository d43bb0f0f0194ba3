"""The concept-question bank: version-controlled YAML under interview/bank/, one file per topic.

Each file is ``{topic: <slug>, questions: [<question>, ...]}``. ``question_validate`` is the
schema; ``questions_load`` creates or updates rows by stable id; ``bank_export`` writes the same
YAML back from the database.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import transaction

from grader.yaml_text import yaml_load
from interview.formula import FormulaError, formula_evaluate

if TYPE_CHECKING:
    from grader.versions import LoadReport

BANK_DIR = Path(__file__).resolve().parent / "bank"

TYPES = ("single_choice", "multiple_choice", "numeric", "parametric", "short_answer")
LEVELS = ("junior", "mid", "senior", "staff")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?\}")
COMMON_KEYS = {"id", "type", "topics", "level", "prompt", "explanation", "source", "published"}
TYPE_KEYS = {
    "single_choice": {"choices", "answer"},
    "multiple_choice": {"choices", "answer"},
    "numeric": {"answer", "tolerance", "unit", "formula", "variables"},
    "parametric": {"parameters", "formula", "tolerance", "unit", "examples"},
    "short_answer": {"rubric", "model_answer"},
}
OPTIONAL_KEYS = {"short_answer": {"pass_score"}}
# A hand-written answer must agree with its formula this closely (relative): the formula is
# what grades, the written number is the author's check on it.
ANSWER_AGREEMENT = 0.005


class BankError(ValueError):
    """A bank question that breaks the schema; the message names the question and the field."""


@dataclass(frozen=True)
class BankQuestion:
    topic: str
    position: int
    spec: dict[str, Any]


def question_validate(spec: Mapping[str, Any], topic: str | None = None) -> None:
    """Raise BankError unless ``spec`` is a well-formed question (of ``topic``'s file, if given)."""
    qid = spec.get("id", "?") if isinstance(spec, Mapping) else "?"

    def fail(message: str) -> None:
        raise BankError(f"{qid}: {message}")

    if not isinstance(spec, Mapping):
        fail("a question is a mapping")
    missing = {"id", "type", "topics", "level", "prompt", "explanation", "source"} - set(spec)
    if missing:
        fail(f"missing {', '.join(sorted(missing))}")
    if not isinstance(spec["id"], str) or not SLUG.match(spec["id"]):
        fail("id is a lowercase slug")
    qtype = spec["type"]
    if qtype not in TYPES:
        fail(f"type {qtype!r} is not one of {', '.join(TYPES)}")
    allowed = COMMON_KEYS | TYPE_KEYS[qtype] | OPTIONAL_KEYS.get(qtype, set())
    unknown = set(spec) - allowed
    if unknown:
        fail(f"unknown keys {', '.join(sorted(unknown))}")
    absent = TYPE_KEYS[qtype] - set(spec)
    if absent:
        fail(f"a {qtype} question needs {', '.join(sorted(absent))}")
    topics = spec["topics"]
    if (
        not isinstance(topics, list)
        or not topics
        or not all(isinstance(t, str) and SLUG.match(t) for t in topics)
    ):
        fail("topics is a non-empty list of slugs")
    if topic is not None and topics[0] != topic:
        fail(f"the first topic must be the file's topic {topic!r}")
    if spec["level"] not in LEVELS:
        fail(f"level is one of {', '.join(LEVELS)}")
    for key in ("prompt", "explanation"):
        if not isinstance(spec[key], str) or len(spec[key].strip()) < 10:
            fail(f"{key} is text of at least 10 characters")
    source = spec["source"]
    if (
        not isinstance(source, Mapping)
        or set(source) != {"title", "url"}
        or not str(source["url"]).startswith("https://")
        or not str(source["title"]).strip()
    ):
        fail("source is {title, url} with an https:// url")
    if "published" in spec and not isinstance(spec["published"], bool):
        fail("published is true or false")
    {
        "single_choice": _validate_choice,
        "multiple_choice": _validate_choice,
        "numeric": _validate_numeric,
        "parametric": _validate_parametric,
        "short_answer": _validate_short_answer,
    }[qtype](spec, fail)


def _validate_choice(spec: Mapping[str, Any], fail) -> None:
    choices = spec["choices"]
    if (
        not isinstance(choices, list)
        or len(choices) < 2
        or not all(isinstance(c, str) and c.strip() for c in choices)
    ):
        fail("choices is a list of at least two texts")
    if len(set(choices)) != len(choices):
        fail("choices repeat")
    answer = spec["answer"]
    indices = [answer] if spec["type"] == "single_choice" else answer
    if spec["type"] == "multiple_choice" and (not isinstance(answer, list) or not answer):
        fail("a multiple_choice answer is a non-empty list of choice indices")
    if not all(isinstance(i, int) and 0 <= i < len(choices) for i in indices):
        fail("answer indexes the choices (from 0)")
    if len(set(indices)) != len(indices):
        fail("answer repeats an index")


def _validate_number_fields(spec: Mapping[str, Any], fail) -> None:
    tolerance = spec["tolerance"]
    if not isinstance(tolerance, int | float) or not 0 < tolerance < 0.5:
        fail("tolerance is a relative fraction between 0 and 0.5")
    if not isinstance(spec["unit"], str):
        fail("unit is text (empty for a pure number)")
    if not isinstance(spec["formula"], str):
        fail("formula is text")


def _validate_numeric(spec: Mapping[str, Any], fail) -> None:
    _validate_number_fields(spec, fail)
    variables = spec["variables"]
    if not isinstance(variables, Mapping) or not all(
        isinstance(v, int | float) for v in variables.values()
    ):
        fail("variables maps names to numbers")
    try:
        computed = formula_evaluate(spec["formula"], variables)
    except (FormulaError, ZeroDivisionError) as error:
        fail(str(error))
    _check_agreement(spec["answer"], computed, fail)


def _check_agreement(written: Any, computed: float, fail) -> None:
    if not isinstance(written, int | float):
        fail("answer is a number")
    if not math.isclose(written, computed, rel_tol=ANSWER_AGREEMENT, abs_tol=1e-12):
        fail(f"answer {written} disagrees with its formula, which gives {computed:.6g}")


def _validate_parametric(spec: Mapping[str, Any], fail) -> None:
    _validate_number_fields(spec, fail)
    parameters = spec["parameters"]
    if not isinstance(parameters, Mapping) or not parameters:
        fail("parameters maps names to lists of options")
    for name, options in parameters.items():
        if not IDENTIFIER.match(name) or name == "answer":
            fail(f"parameter name {name!r} is a lowercase identifier")
        if not isinstance(options, list) or len(options) < 2:
            fail(f"parameter {name} needs at least two options to re-draw")
        for option in options:
            if isinstance(option, Mapping):
                if "name" not in option:
                    fail(f"each mapping option of {name} has a name")
            elif not isinstance(option, int | float):
                fail(f"options of {name} are numbers or mappings")
    for draw in parameter_draws_all(spec):
        try:
            value = formula_evaluate(spec["formula"], draw)
        except (FormulaError, ZeroDivisionError) as error:
            fail(str(error))
        if not math.isfinite(value):
            fail(f"formula is not finite for {draw}")
        for text in (spec["prompt"], spec["explanation"]):
            try:
                template_render(text, draw, value)
            except KeyError as error:
                fail(f"placeholder {error} is not a parameter")
    examples = spec["examples"]
    if not isinstance(examples, list) or not examples:
        fail("examples lists hand-computed {params, answer} checks")
    for example in examples:
        draw = parameters_pick(spec, example.get("params", {}))
        if draw is None:
            fail(f"example params {example.get('params')} do not name options")
        _check_agreement(example.get("answer"), formula_evaluate(spec["formula"], draw), fail)


def _validate_short_answer(spec: Mapping[str, Any], fail) -> None:
    rubric = spec["rubric"]
    if not isinstance(rubric, Mapping) or set(rubric) - {"points", "misconceptions"}:
        fail("rubric has points and optionally misconceptions")
    points = rubric.get("points")
    if not isinstance(points, list) or not points:
        fail("rubric needs at least one point")
    seen: set[str] = set()
    for entry in points + list(rubric.get("misconceptions") or []):
        if not isinstance(entry, Mapping) or not {"id", "text", "keywords"} <= set(entry):
            fail("each rubric entry has id, text and keywords")
        if entry["id"] in seen or not SLUG.match(str(entry["id"])):
            fail(f"rubric id {entry['id']!r} is a slug used once")
        seen.add(entry["id"])
        keywords = entry["keywords"]
        if (
            not isinstance(keywords, list)
            or not keywords
            or not all(isinstance(k, str) and k.strip() for k in keywords)
        ):
            fail(f"rubric entry {entry['id']} lists keywords")
    for entry in rubric.get("misconceptions") or []:
        penalty = entry.get("penalty")
        if not isinstance(penalty, int | float) or not 0 < penalty <= 1:
            fail(f"misconception {entry['id']} has a penalty between 0 and 1")
    for entry in points + list(rubric.get("misconceptions") or []):
        allowed = {
            "id",
            "text",
            "keywords",
            "exemplars",
            "near_misses",
            "weight" if entry in points else "penalty",
        }
        if set(entry) - allowed:
            fail(f"rubric entry {entry['id']} has unknown keys {sorted(set(entry) - allowed)}")
        for key in ("exemplars", "near_misses"):
            sentences = entry.get(key, [])
            if not isinstance(sentences, list) or not all(isinstance(e, str) for e in sentences):
                fail(f"rubric entry {entry['id']} lists {key} as sentences")
    for entry in points:
        weight = entry.get("weight", 1)
        if not isinstance(weight, int | float) or weight <= 0:
            fail(f"point {entry['id']} has a positive weight")
    if not isinstance(spec["model_answer"], str) or len(spec["model_answer"]) < 40:
        fail("model_answer is a full answer")
    pass_score = spec.get("pass_score", 0.6)
    if not isinstance(pass_score, int | float) or not 0 < pass_score <= 1:
        fail("pass_score is between 0 and 1")


def option_label(option: Any) -> str:
    return str(option["name"]) if isinstance(option, Mapping) else str(option)


def parameter_draws_all(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every combination of a parametric question's options."""
    names = list(spec["parameters"])
    for combination in itertools.product(*(spec["parameters"][n] for n in names)):
        yield dict(zip(names, combination, strict=True))


def parameters_draw(spec: Mapping[str, Any], rng: random.Random | None = None) -> dict[str, Any]:
    """A fresh random choice of one option per parameter (empty for other types)."""
    if spec["type"] != "parametric":
        return {}
    rng = rng or random.Random()
    return {name: rng.choice(options) for name, options in spec["parameters"].items()}


CHOICE_TYPES = ("single_choice", "multiple_choice")


def option_order_draw(spec: Mapping[str, Any], rng: random.Random | None = None) -> list[int]:
    """A fresh shuffle of a choice question's options (file indices in the order shown).

    Each attempt draws its own and keeps it, so the same attempt always shows the same order
    and grading maps the shown positions back. Empty for questions without choices.
    """
    if spec["type"] not in CHOICE_TYPES:
        return []
    order = list(range(len(spec["choices"])))
    (rng or random.Random()).shuffle(order)
    return order


def option_order_valid(spec: Mapping[str, Any], order: Any) -> bool:
    """Whether ``order`` is a shuffle of this question's options (empty: no choices to shuffle)."""
    if spec["type"] not in CHOICE_TYPES:
        return order in ([], None)
    return isinstance(order, list) and sorted(order) == list(range(len(spec["choices"])))


def option_order_or_bank(spec: Mapping[str, Any], order: Any) -> list[int]:
    """``order`` where it still fits the question, else bank order (the question was edited
    after the order was drawn: a page and its grading must still agree on one order)."""
    if option_order_valid(spec, order):
        return list(order or [])
    return list(range(len(spec["choices"]))) if spec["type"] in CHOICE_TYPES else []


def choices_shown(spec: Mapping[str, Any], order: list[int]) -> list[tuple[int, str]]:
    """(shown position, text) of each option in the order the attempt shows them."""
    return [(position, spec["choices"][index]) for position, index in enumerate(order)]


@dataclass(frozen=True)
class ChoiceStats:
    """How much a bank's choice questions give away by layout alone (positions and lengths).

    A question counts as *right-first* when its right options are the first ones (single
    choice: option 0; multiple choice: exactly options 0..k-1), and as *right-longest* when
    every right option is at least as long as every wrong one (characters, stripped): a tie at
    the top counts, since it still points a length-guesser at the answer, unless every option
    has the same length, where length tells nothing. *Right-shortest* mirrors it.
    """

    single: int
    multiple: int
    right_first: int
    right_longest: int
    right_shortest: int
    single_answer_positions: dict[int, int]
    multiple_answer_starts: dict[int, int]

    @property
    def questions(self) -> int:
        return self.single + self.multiple


def choice_stats(specs: list[Mapping[str, Any]]) -> ChoiceStats:
    """Layout statistics of the choice questions among ``specs`` (see ChoiceStats)."""
    choice = [s for s in specs if s["type"] in CHOICE_TYPES]
    first = longest = shortest = 0
    positions: dict[int, int] = {}
    starts: dict[int, int] = {}
    for spec in choice:
        right = sorted(spec["answer"]) if isinstance(spec["answer"], list) else [spec["answer"]]
        lengths = [len(c.strip()) for c in spec["choices"]]
        right_lengths = [lengths[i] for i in right]
        wrong_lengths = [n for i, n in enumerate(lengths) if i not in right]
        informative = len(set(lengths)) > 1
        first += right == list(range(len(right)))
        longest += informative and min(right_lengths) >= max(wrong_lengths)
        shortest += informative and max(right_lengths) <= min(wrong_lengths)
        tally = positions if spec["type"] == "single_choice" else starts
        tally[right[0]] = tally.get(right[0], 0) + 1
    return ChoiceStats(
        single=sum(s["type"] == "single_choice" for s in choice),
        multiple=sum(s["type"] == "multiple_choice" for s in choice),
        right_first=first,
        right_longest=longest,
        right_shortest=shortest,
        single_answer_positions=dict(sorted(positions.items())),
        multiple_answer_starts=dict(sorted(starts.items())),
    )


def parameters_pick(spec: Mapping[str, Any], labels: Mapping[str, Any]) -> dict[str, Any] | None:
    """The options named by ``labels`` (option name or number per parameter), or None."""
    picked = {}
    for name, options in spec["parameters"].items():
        matches = [o for o in options if option_label(o) == str(labels.get(name))]
        if len(matches) != 1:
            return None
        picked[name] = matches[0]
    return picked


def number_format(value: float) -> str:
    """A number as people write it: thousands separators, at most six significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"


def template_render(text: str, params: Mapping[str, Any], answer: float | None = None) -> str:
    """Fill ``{name}``, ``{group.field}`` and ``{answer}`` placeholders from a draw."""

    def replace(match: re.Match) -> str:
        name, field = match.group(1), match.group(2)
        if name == "answer" and field is None and answer is not None:
            return number_format(answer)
        value = params[name]
        if field is not None:
            value = value[field]
        elif isinstance(value, Mapping):
            value = value["name"]
        return number_format(value) if isinstance(value, int | float) else str(value)

    return PLACEHOLDER.sub(replace, text)


def expected_number(spec: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    """The value that grades a numeric or parametric answer: its formula over its inputs."""
    variables = spec["variables"] if spec["type"] == "numeric" else params
    return formula_evaluate(spec["formula"], variables)


def bank_read(bank_dir: Path = BANK_DIR) -> list[BankQuestion]:
    """Every question in the YAML files, validated, in file order; ids unique across files."""
    questions: list[BankQuestion] = []
    seen: dict[str, str] = {}
    for path in sorted(bank_dir.glob("*.yaml")):
        document = yaml_load(path.read_text())
        if not isinstance(document, Mapping) or set(document) != {"topic", "questions"}:
            raise BankError(f"{path.name}: a bank file is {{topic, questions}}")
        topic = document["topic"]
        if path.stem != topic:
            raise BankError(f"{path.name}: topic {topic!r} must match the file name")
        for position, spec in enumerate(document["questions"]):
            question_validate(spec, topic)
            if spec["id"] in seen:
                raise BankError(f"{spec['id']}: id also used in {seen[spec['id']]}")
            seen[spec["id"]] = path.name
            questions.append(BankQuestion(topic=topic, position=position, spec=dict(spec)))
    return questions


def question_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The indexed columns of a Question row, derived from its spec."""
    return {
        "topic": spec["topics"][0],
        "topics": list(spec["topics"]),
        "level": spec["level"],
        "type": spec["type"],
        "prompt": spec["prompt"],
        "explanation": spec["explanation"],
        "source_title": spec["source"]["title"],
        "source_url": spec["source"]["url"],
        "published": spec.get("published", True),
    }


def question_snapshot(question) -> dict[str, Any]:
    """Everything an author edits of a question, as one mapping: its YAML spec, with
    ``published: false`` when it is hidden (a version's snapshot, and what its hash covers)."""
    return question_spec_full(question)


def question_apply(question, snapshot: Mapping[str, Any]) -> None:
    """Set a (possibly unsaved) row's fields from a snapshot (the inverse of question_snapshot)."""
    spec = {k: v for k, v in snapshot.items() if k != "published"}
    for name, value in question_fields(snapshot).items():
        setattr(question, name, value)
    question.bank_id = spec["id"]
    question.spec = spec


def questions_load(bank_dir: Path = BANK_DIR) -> int:
    """Load the shipped YAML into the database; returns how many questions the files hold.

    See ``questions_load_report``: nothing an author wrote is overwritten or unpublished."""
    questions = bank_read(bank_dir)
    _questions_sync(questions)
    return len(questions)


def questions_load_report(bank_dir: Path = BANK_DIR) -> LoadReport:
    """Add new questions and update the shipped ones nobody edited since they were loaded.

    Once seeded, the database is the source of truth: an author's edit and a question made in
    the admin are kept, and a shipped question that left the YAML is unpublished, never
    deleted, so attempts and review cards keep it (the rules: grader.versions.shipped_sync).
    """
    return _questions_sync(bank_read(bank_dir))


def _questions_sync(questions: list[BankQuestion]) -> LoadReport:
    from grader.versions import Shipped, shipped_sync
    from interview.models import Question

    shipped = [Shipped.of(item.spec["id"], item.position, item.spec) for item in questions]
    with transaction.atomic():
        return shipped_sync(
            {q.bank_id: q for q in Question.objects.select_for_update()},
            shipped,
            new_row=Question,
            snapshot_of=question_snapshot,
            apply=question_apply,
            note="the bank",
        )


# The order authors read a question's keys in (a JSON column may store them in its own).
KEY_ORDER = (
    "id", "type", "topics", "level", "prompt", "choices", "answer", "tolerance", "unit",
    "formula", "variables", "parameters", "examples", "rubric", "model_answer", "pass_score",
    "explanation", "source",
)  # fmt: skip


def question_spec_full(question) -> dict[str, Any]:
    """A row's spec as it is written in YAML, keys in KEY_ORDER, with ``published: false``
    where it is hidden."""
    rank = {key: i for i, key in enumerate(KEY_ORDER)}
    spec = dict(sorted(question.spec.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    if not question.published:
        spec["published"] = False
    return spec


def bank_export(bank_dir: Path) -> list[Path]:
    """Write every question back to ``<bank_dir>/<topic>.yaml``; returns the files written."""
    from interview.models import Question

    by_topic: dict[str, list[dict[str, Any]]] = {}
    for question in Question.objects.order_by("topic", "position", "bank_id"):
        by_topic.setdefault(question.topic, []).append(question_spec_full(question))
    bank_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, specs in by_topic.items():
        path = bank_dir / f"{topic}.yaml"
        path.write_text(bank_dump({"topic": topic, "questions": specs}))
        written.append(path)
    return written


def bank_dump(document: Mapping[str, Any]) -> str:
    """YAML as authors write it: keys in their order, multi-line text as blocks."""
    from grader.yaml_text import yaml_dump

    return yaml_dump(document)
