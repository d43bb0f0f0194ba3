"""System-design round prompts: loading, validation, parameter draws, answers, grading.

Each `*.yaml` file in this folder is one prompt (see `DesignPrompt`); `_points.yaml` holds
rubric points shared by many prompts, used as `{use: point_id}`. Numeric sub-questions name
a function of `engine.capacity` and map its arguments to the prompt's drawn parameters, so
every attempt gets fresh numbers and an answer the capacity model computes. Plain Python: no
Django.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from engine import capacity
from grader.yaml_text import yaml_load
from interview.design.premises import ADJUSTED, IDEAL, accepts_ideal, numeric_premises
from interview.formula import expression_evaluate
from interview.rubric import Grade, Rubric, grade_answer, rubric_from_dict

DESIGN_DIR = Path(__file__).resolve().parent
SHARED_POINTS_FILE = "_points.yaml"
SECTION_NAMES = (
    "latency_budget",
    "throughput_model",
    "memory_model",
    "cache_strategy",
    "observability",
    "failure_modes",
)
LEVELS = ("junior", "mid", "senior", "staff")
CAPACITY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        capacity.weight_bytes,
        capacity.kv_bytes_per_token,
        capacity.max_concurrent_sequences,
        capacity.prefill_time,
        capacity.decode_step_time,
        capacity.throughput,
        capacity.roofline_tokens_per_s,
        capacity.gpus_needed,
        capacity.allreduce_time,
        capacity.pipeline_bubble,
        capacity.param_counts,
        capacity.estimate,
    )
}


@dataclass(frozen=True)
class Parameter:
    """A value re-drawn each attempt: one of `choices`, or an integer in [low, high] by `step`.

    A choice that is a mapping sets several parameters together (say a GPU and the dtype
    that fits on it).
    """

    name: str
    choices: tuple[Any, ...] = ()
    low: int = 0
    high: int = 0
    step: int = 1


@dataclass(frozen=True)
class NumericQuestion:
    """A sub-question whose answer is `function(**args).field × scale`, within `tolerance`."""

    id: str
    question: str
    function: str
    args: tuple[tuple[str, Any], ...]
    field: str
    unit: str
    tolerance: float  # relative
    derivation: str
    scale: float = 1.0


@dataclass(frozen=True)
class Section:
    name: str
    question: str
    rubric: Rubric


@dataclass(frozen=True)
class FollowUp:
    """A scripted turn pushed to the candidate `after_minutes` into the round."""

    id: str
    prompt: str
    after_minutes: int
    rubric: Rubric


@dataclass(frozen=True)
class DesignPrompt:
    id: str
    title: str
    level: str
    minutes: int
    prompt: str
    parameters: tuple[Parameter, ...]
    numeric: tuple[NumericQuestion, ...]
    sections: tuple[Section, ...]
    follow_ups: tuple[FollowUp, ...]
    model_answer: str
    source: str = ""


@dataclass(frozen=True)
class NumericAnswer:
    """The capacity model's answer to one sub-question for one draw of parameters.

    `value` is the efficiency-adjusted answer; `ideal_value` the ideal roofline where
    efficiency changes the answer beyond the tolerance (None where it does not); `premises`
    are what the checker assumes, shown before the candidate answers.
    """

    question_id: str
    question: str
    value: float
    unit: str
    tolerance: float
    derivation: str
    assumptions: tuple[str, ...]
    ideal_value: float | None = None
    premises: tuple[str, ...] = ()


def resolve_arg(name: str, value: Any, params: Mapping[str, Any]) -> Any:
    """An argument's value: `$expr` is arithmetic over parameters (``interview.formula``, its
    value as computed: `$model` a name, `$batch * 2` an integer); `model`/`gpu` become specs."""
    if isinstance(value, str) and value.startswith("$"):
        value = expression_evaluate(value[1:], params)
    if name == "model":
        return capacity.model_spec(value)
    if name == "gpu":
        return capacity.gpu_spec(value)
    if name == "efficiency":
        return capacity.Efficiency(**value)
    return value


# ---------------------------------------------------------------- loading


def _rubric(data: Mapping[str, Any], shared: Mapping[str, Mapping[str, Any]]) -> Rubric:
    def expand(items: list[Any]) -> list[Mapping[str, Any]]:
        out = []
        for item in items:
            if "use" in item:
                if item["use"] not in shared:
                    raise ValueError(f"unknown shared rubric point {item['use']!r}")
                overrides = {k: v for k, v in item.items() if k != "use"}
                out.append({**shared[item["use"]], **overrides})
            else:
                out.append(item)
        return out

    return rubric_from_dict(
        {
            "points": expand(data.get("points", [])),
            "misconceptions": expand(data.get("misconceptions", [])),
        }
    )


@cache
def shared_points(directory: Path = DESIGN_DIR) -> dict[str, Mapping[str, Any]]:
    """Shared rubric points by id (points and misconceptions alike)."""
    data = yaml_load((directory / SHARED_POINTS_FILE).read_text(encoding="utf-8"))
    items = [*data["points"], *data["misconceptions"]]
    return {item["id"]: item for item in items}


def _parameter(name: str, data: Mapping[str, Any]) -> Parameter:
    if "choices" in data:
        if not data["choices"]:
            raise ValueError(f"parameter {name!r} has no choices")
        return Parameter(name, tuple(data["choices"]))
    low, high = data["range"]
    step = int(data.get("step", 1))
    if not (isinstance(low, int) and isinstance(high, int) and low <= high and step > 0):
        raise ValueError(f"parameter {name!r}: range needs integers low <= high, step > 0")
    return Parameter(name, (), low, high, step)


def _numeric(data: Mapping[str, Any]) -> NumericQuestion:
    function = data["function"]
    if function not in CAPACITY_FUNCTIONS:
        raise ValueError(
            f"question {data['id']!r}: unknown capacity function {function!r}; choose from "
            f"{', '.join(CAPACITY_FUNCTIONS)}"
        )
    tolerance = float(data["tolerance"])
    if not 0 < tolerance < 1:
        raise ValueError(f"question {data['id']!r}: tolerance must be in (0, 1)")
    return NumericQuestion(
        id=data["id"],
        question=data["question"],
        function=function,
        args=tuple(data["args"].items()),
        field=data["field"],
        unit=data["unit"],
        tolerance=tolerance,
        derivation=data["derivation"],
        scale=float(data.get("scale", 1.0)),
    )


def design_prompt_from_dict(
    data: Mapping[str, Any], shared: Mapping[str, Mapping[str, Any]]
) -> DesignPrompt:
    """A validated DesignPrompt from its YAML mapping."""
    sections = data["sections"]
    if set(sections) != set(SECTION_NAMES) or len(sections) != len(SECTION_NAMES):
        raise ValueError(f"{data['id']}: sections must be {SECTION_NAMES}, got {tuple(sections)}")
    if data["level"] not in LEVELS:
        raise ValueError(f"{data['id']}: level must be one of {LEVELS}")
    prompt = DesignPrompt(
        id=data["id"],
        title=data["title"],
        level=data["level"],
        minutes=int(data["minutes"]),
        prompt=data["prompt"],
        # By name, not as written: a database's JSON may store a mapping's keys in its own
        # order, and the order decides what a seeded draw gives.
        parameters=tuple(_parameter(n, p) for n, p in sorted(data["parameters"].items())),
        numeric=tuple(_numeric(q) for q in data["numeric"]),
        sections=tuple(
            Section(name, sections[name]["question"], _rubric(sections[name]["rubric"], shared))
            for name in SECTION_NAMES
        ),
        follow_ups=tuple(
            FollowUp(f["id"], f["prompt"], int(f["after_minutes"]), _rubric(f["rubric"], shared))
            for f in data["follow_ups"]
        ),
        model_answer=data["model_answer"],
        source=data.get("source", ""),
    )
    if not prompt.numeric or not prompt.follow_ups:
        raise ValueError(f"{prompt.id}: needs numeric sub-questions and follow-ups")
    ids = [q.id for q in prompt.numeric] + [f.id for f in prompt.follow_ups]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{prompt.id}: duplicate question or follow-up ids")
    return prompt


def design_files_read(directory: Path = DESIGN_DIR) -> list[tuple[str, dict[str, Any]]]:
    """Every prompt file in `directory` as (file name, mapping), sorted by name, unvalidated."""
    return [
        (path.name, yaml_load(path.read_text(encoding="utf-8")))
        for path in sorted(directory.glob("*.yaml"))
        if not path.name.startswith("_")
    ]


@cache
def load_design_prompts(directory: Path = DESIGN_DIR) -> tuple[DesignPrompt, ...]:
    """Every prompt file in `directory`, sorted by file name; ValueError names the bad file.

    The shipped files, read once per process; the site reads the database, which the bank
    loader seeds from them (interview.design_bank).
    """
    shared = shared_points(directory)
    prompts = []
    for name, data in design_files_read(directory):
        try:
            prompts.append(design_prompt_from_dict(data, shared))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{name}: {error!r}") from error
    if len({p.id for p in prompts}) != len(prompts):
        raise ValueError("duplicate design prompt ids")
    return tuple(prompts)


def example_params(prompt: DesignPrompt, data: Mapping[str, Any]) -> dict[str, Any]:
    """The worked example's parameters (``example.params``), checked to be a draw the prompt
    can make; a prompt without an example gets the draw of seed 0."""
    example = data.get("example")
    if not example:
        return draw_parameters(prompt, random.Random(0))
    params = example.get("params")
    if not isinstance(params, Mapping):
        raise ValueError(f"{prompt.id}: example.params must be a mapping of parameter values")
    for parameter in prompt.parameters:
        if parameter.choices:
            possible = [
                c if isinstance(c, Mapping) else {parameter.name: c} for c in parameter.choices
            ]
            if not any(all(params.get(k) == v for k, v in c.items()) for c in possible):
                raise ValueError(
                    f"{prompt.id}: example.params does not hold one of {parameter.name!r}'s choices"
                )
        elif params.get(parameter.name) not in range(
            parameter.low, parameter.high + 1, parameter.step
        ):
            raise ValueError(f"{prompt.id}: example {parameter.name!r} is outside its range")
    answers = example.get("answers") or {}
    ids = {q.id for q in prompt.numeric}
    unknown = set(answers) - ids
    if unknown:
        raise ValueError(f"{prompt.id}: example.answers names no sub-question {sorted(unknown)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in answers.values()):
        raise ValueError(f"{prompt.id}: example.answers must be numbers")
    return dict(params)


def design_prompt_validate(data: Mapping[str, Any]) -> DesignPrompt:
    """A prompt mapping as an author wrote it, checked as far as it can be without grading:
    its schema, its worked example, and that its prompt, follow-ups and every sub-question
    render and compute for the example's parameters. ValueError says what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("a design prompt is a mapping")
    try:
        prompt = design_prompt_from_dict(data, shared_points())
        params = example_params(prompt, data)
        render(prompt.prompt, params)
        for follow_up in prompt.follow_ups:
            render(follow_up.prompt, params)
        for section in prompt.sections:
            render(section.question, params)
        for question in prompt.numeric:
            numeric_answer(question, params)
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from error
    return prompt


# ---------------------------------------------------------------- an attempt


def draw_parameters(prompt: DesignPrompt, rng: random.Random) -> dict[str, Any]:
    """One attempt's parameter values."""
    params: dict[str, Any] = {}
    for parameter in prompt.parameters:
        if parameter.choices:
            value = rng.choice(parameter.choices)
        else:
            value = rng.randrange(parameter.low, parameter.high + 1, parameter.step)
        if isinstance(value, Mapping):
            params.update(value)
        else:
            params[parameter.name] = value
    return params


def _render_context(params: Mapping[str, Any]) -> dict[str, Any]:
    context = dict(params)
    if "model" in params:
        context["m"] = capacity.model_spec(params["model"])
    if "gpu" in params:
        context["g"] = capacity.gpu_spec(params["gpu"])
    return context


def render(template: str, params: Mapping[str, Any]) -> str:
    """A prompt, question or follow-up with this attempt's parameters filled in."""
    return template.format(**_render_context(params))


def numeric_answer(question: NumericQuestion, params: Mapping[str, Any]) -> NumericAnswer:
    """Compute the answer through engine.capacity, its ideal roofline where efficiency enters,
    the premises to state up front, and the worked derivation."""
    args = {name: resolve_arg(name, value, params) for name, value in question.args}
    function = CAPACITY_FUNCTIONS[question.function]
    result = function(**args)
    value = float(getattr(result, question.field)) * question.scale
    ideal = None
    if accepts_ideal(question.function, question.field) and "efficiency" not in args:
        peak = float(getattr(function(**args, efficiency=capacity.PEAK), question.field))
        if abs(peak * question.scale - value) > question.tolerance * abs(value):
            ideal = peak * question.scale
    context = _render_context(params) | {"r": result, "answer": value}
    return NumericAnswer(
        question.id,
        question.question.format(**context),
        value,
        question.unit,
        question.tolerance,
        question.derivation.format(**context),
        tuple(result.assumptions),
        ideal,
        numeric_premises(question.function, question.field, args),
    )


def numeric_reading(answer: NumericAnswer, given: float) -> str | None:
    """Which accepted answer `given` matches within the tolerance, the nearer where both do:
    ADJUSTED (the capacity model's, with its efficiency factors), IDEAL (the roofline), or
    None."""
    matches = [
        (abs(given - target) / abs(target), reading)
        for reading, target in ((ADJUSTED, answer.value), (IDEAL, answer.ideal_value))
        if target is not None and abs(given - target) <= answer.tolerance * abs(target)
    ]
    return min(matches)[1] if matches else None


def numeric_correct(answer: NumericAnswer, given: float) -> bool:
    """Whether `given` is within the relative tolerance of either accepted answer."""
    return numeric_reading(answer, given) is not None


# A section or follow-up passes (on the command line and in the agreement figures) at this score.
SECTION_PASS_SCORE = 0.6


def grade_section(
    rubric: Rubric, text: str, params: Mapping[str, Any] | None = None, question: str = ""
) -> Grade:
    """Grade a section or follow-up answer; the attempt's parameters feed the roofline check,
    `question` (what was asked) the check that a sentence does more than restate it."""
    setup = {k: params[k] for k in ("model", "gpu", "gpus", "batch") if params and k in params}
    return grade_answer(text, rubric, setup=setup, question=question, pass_score=SECTION_PASS_SCORE)


def answer_as_dict(answer: NumericAnswer) -> dict[str, Any]:
    return asdict(answer) | {
        "assumptions": list(answer.assumptions),
        "premises": list(answer.premises),
    }
