"""One judge for every written answer: bank short answers, design sections and follow-ups.

The pages, the API and the mock-loop scorecard grade through `interview.grading.text_grade` and
`interview.design.grade_section`; this module resolves an answer's target by id (for
`manage.py grade_answer` and the agreement figures) and calls the same two functions. It also
loads labelled answer cases and measures the judge's agreement with them by kind. Plain Python:
no Django. Rubrics come from a `RubricSource`: the shipped YAML by default (the agreement
figures, the benchmarks), and in a Django process the database rows the pages grade against
(`interview.selectors.judge_rubrics`: an author's edit in the admin is what the commands see).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from grader.yaml_text import yaml_load
from interview import rubric, verdict
from interview.design import (
    SECTION_PASS_SCORE,
    DesignPrompt,
    grade_section,
    load_design_prompts,
)
from interview.grading import DEFAULT_PASS_SCORE, text_grade
from interview.question_bank import bank_read, template_render
from interview.rubric import Grade

KINDS = ("vacuous", "wrong", "paraphrase", "honest")


class TargetUnknown(ValueError):
    """An answer target that names no short-answer question, prompt, section or follow-up."""


@dataclass(frozen=True)
class AnswerTarget:
    """What an answer replies to: a bank question, or a design prompt's section or follow-up."""

    question: str = ""
    design: str = ""
    section: str = ""
    follow_up: str = ""

    def label(self) -> str:
        if self.question:
            return self.question
        return f"{self.design}/{self.section or self.follow_up}"


@dataclass(frozen=True)
class Verdict:
    target: AnswerTarget
    grade: Grade
    pass_score: float

    @property
    def passed(self) -> bool:
        return self.grade.score >= self.pass_score

    def as_dict(self) -> dict[str, Any]:
        """The command's JSON: score, passed, each point's evidence, misconceptions stated."""
        return {
            "target": {k: v for k, v in self.target.__dict__.items() if v},
            "score": round(self.grade.score, 4),
            "passed": self.passed,
            "confident": self.grade.confident,
            "vacuous": self.grade.vacuous,
            "points": [
                {
                    "id": e.point_id,
                    "covered": e.covered,
                    "evidence": e.sentence if e.covered else "",
                    "strength": e.similarity,
                    "decided": e.decided,
                    "near_miss": e.near_miss,
                }
                for e in self.grade.points
            ],  # fmt: skip
            "misconceptions": [
                {"id": e.point_id, "text": e.point_text, "evidence": e.sentence}
                for e in self.grade.misconceptions
                if e.covered
            ],
            "coverage": round(self.grade.coverage, 4),
            "contradictions": list(self.grade.contradictions),
        }


def target_from_dict(data: Mapping[str, Any]) -> AnswerTarget:
    """{question: ID} or {design: P, section: S} or {design: P, follow_up: F} (or follow-up)."""
    follow_up = data.get("follow_up") or data.get("follow-up") or ""
    target = AnswerTarget(
        str(data.get("question") or ""),
        str(data.get("design") or ""),
        str(data.get("section") or ""),
        str(follow_up),
    )
    if bool(target.question) == bool(target.design):
        raise TargetUnknown("name either a question or a design prompt")
    if target.design and bool(target.section) == bool(target.follow_up):
        raise TargetUnknown("a design answer names either a section or a follow-up")
    return target


@dataclass(frozen=True)
class RubricSource:
    """The rubrics an answer is graded against: short-answer question specs by id, and the
    design prompts."""

    short_answers: Mapping[str, Mapping[str, Any]]
    design_prompts: Sequence[DesignPrompt]


@cache
def files_source() -> RubricSource:
    """The rubrics as the YAML files ship them (interview/bank/, interview/design/)."""
    return RubricSource(
        {q.spec["id"]: q.spec for q in bank_read() if q.spec["type"] == "short_answer"},
        load_design_prompts(),
    )


def target_judge(target: AnswerTarget, text: str, source: RubricSource | None = None) -> Verdict:
    """Grade `text` against its target's rubric, from `source` (the files by default), with
    the judge the pages use."""
    source = source or files_source()
    if target.question:
        spec = source.short_answers.get(target.question)
        if spec is None:
            known = ", ".join(sorted(source.short_answers))
            raise TargetUnknown(
                f"no short-answer question {target.question!r}; short-answer ids: {known}"
            )
        return Verdict(target, text_grade(spec, text), spec.get("pass_score", DEFAULT_PASS_SCORE))
    prompts = {p.id: p for p in source.design_prompts}
    prompt = prompts.get(target.design)
    if prompt is None:
        raise TargetUnknown(
            f"no design prompt {target.design!r}; prompts: {', '.join(sorted(prompts))}"
        )
    parts = (
        {s.name: (s.rubric, s.question) for s in prompt.sections}
        if target.section
        else {f.id: (f.rubric, f.prompt) for f in prompt.follow_ups}
    )
    name = target.section or target.follow_up
    if name not in parts:
        kind = "section" if target.section else "follow-up"
        raise TargetUnknown(f"{prompt.id} has no {kind} {name!r}; it has: {', '.join(parts)}")
    rubric, question = parts[name]
    question = template_render(question, {}) if "{" not in question else ""
    return Verdict(target, grade_section(rubric, text, question=question), SECTION_PASS_SCORE)


# ---------------------------------------------------------------- warming the judge up

# The answer graded against every rubric to embed the rubric's own texts; nothing it says
# is kept.
WARM_UP_ANSWER = "Warm up."


def every_target(source: RubricSource | None = None) -> list[AnswerTarget]:
    """Every short-answer question and every design section and follow-up of `source` (the
    files by default)."""
    source = source or files_source()
    targets = [AnswerTarget(question=question) for question in source.short_answers]
    for prompt in source.design_prompts:
        targets += [AnswerTarget(design=prompt.id, section=s.name) for s in prompt.sections]
        targets += [AnswerTarget(design=prompt.id, follow_up=f.id) for f in prompt.follow_ups]
    return targets


def judge_warm_up(
    path: Path,
    *,
    keep: bool,
    targets: Sequence[AnswerTarget] = (),
    source: RubricSource | None = None,
) -> int:
    """Embed every rubric's texts (statements, exemplars, near misses, the model answers'
    claims) before a candidate's first grade has to: read those kept in ``path``, compute the
    ones missing, and with ``keep`` write them all back. Only a process that grades nobody
    may keep (its cache holds rubric texts alone, never a candidate's sentences). Returns how
    many sentences were computed. ``targets``: these only (every one of ``source``, the files
    by default, otherwise).

    `manage.py serve` runs it as `manage.py warm_judge` beside the server at each start, and
    the server reads the file as it starts: from the second start on, no rubric text is
    embedded while a candidate waits."""
    rubric.embeddings_read(path)
    before = rubric.embedded_sentences()
    for target in targets or every_target(source):
        target_judge(target, WARM_UP_ANSWER, source)
    rubric_texts = {s for s in rubric.embedded_sentences() if "warm up" not in s.lower()}
    computed = rubric_texts - before
    if keep and computed:
        rubric.embeddings_write(path, rubric_texts)
    return len(computed)


# ---------------------------------------------------------------- labelled answer cases


@dataclass(frozen=True)
class AnswerCase:
    target: AnswerTarget
    kind: str
    expected_pass: bool
    text: str


def answer_cases_load(path: Path) -> list[AnswerCase]:
    """Labelled answers from a YAML list (see tests/interview/answer_cases/tuning.yaml)."""
    cases = []
    for index, item in enumerate(yaml_load(path.read_text(encoding="utf-8"))):
        if item.get("kind") not in KINDS or item.get("expected") not in ("pass", "fail"):
            raise ValueError(f"{path.name} case {index}: kind in {KINDS}, expected pass or fail")
        cases.append(
            AnswerCase(
                target_from_dict(item["target"]),
                item["kind"],
                item["expected"] == "pass",
                str(item["text"]),
            )
        )
    return cases


@dataclass(frozen=True)
class KindAgreement:
    kind: str
    cases: int
    agreed: int
    max_score: float
    disagreements: tuple[str, ...]

    @property
    def agreement(self) -> float:
        return self.agreed / self.cases if self.cases else 0.0


def agreement_by_kind(
    cases: Sequence[AnswerCase], verdicts: Iterable[Verdict] | None = None
) -> dict[str, KindAgreement]:
    """Per kind: how many verdicts match the label, the highest score, and which disagree."""
    verdicts = (
        list(verdicts) if verdicts is not None else [target_judge(c.target, c.text) for c in cases]
    )
    table = {}
    for kind in KINDS:
        judged = [(c, v) for c, v in zip(cases, verdicts, strict=True) if c.kind == kind]
        table[kind] = KindAgreement(
            kind,
            len(judged),
            sum(v.passed == c.expected_pass for c, v in judged),
            max((v.grade.score for _, v in judged), default=0.0),
            tuple(
                f"{c.target.label()} ({'pass' if c.expected_pass else 'fail'} expected, "
                f"scored {v.grade.score:.2f})"
                for c, v in judged
                if v.passed != c.expected_pass
            ),
        )
    return table


# ---------------------------------------------------------------- fitting the verdict

ANSWER_CASES = Path(__file__).resolve().parent.parent / "tests" / "interview" / "answer_cases"


def tuning_case_files(directory: Path = ANSWER_CASES) -> list[Path]:
    """The labelled sets the verdict may be fitted on: every tuning*.yaml, never a held-out set."""
    return sorted(directory.glob("tuning*.yaml"))


@dataclass(frozen=True)
class VerdictFit:
    model: verdict.VerdictModel
    # Per file left out: kind -> (cases, agreeing before, agreeing after), by the model fitted
    # on the other files; "before" is the matcher's coverage against the pass mark.
    left_out: dict[str, dict[str, tuple[int, int, int]]]


def verdict_fit(files: Sequence[Path], l2_penalty: float = verdict.L2_PENALTY) -> VerdictFit:
    """Fit the verdict on the labelled answers in `files`, and measure each file left out."""
    graded = []
    for path in files:
        for case in answer_cases_load(path):
            judged = target_judge(case.target, case.text)
            graded.append((path.name, case, judged))
    names = [name for name, _, _ in graded]
    signals = [judged.grade.signals for _, _, judged in graded]
    labels = [case.expected_pass for _, case, _ in graded]
    left_out: dict[str, dict[str, tuple[int, int, int]]] = {}
    for path in files:
        inside = [i for i, name in enumerate(names) if name != path.name]
        if not inside or len(inside) == len(names):
            continue
        model = verdict.fit([signals[i] for i in inside], [labels[i] for i in inside], l2_penalty)
        table: dict[str, tuple[int, int, int]] = {}
        for i in (i for i, name in enumerate(names) if name == path.name):
            _, case, judged = graded[i]
            before = (judged.grade.coverage >= judged.pass_score) and not judged.grade.vacuous
            after = model.probability(signals[i]) >= 0.5 and not judged.grade.vacuous
            cases, agree_before, agree_after = table.get(case.kind, (0, 0, 0))
            table[case.kind] = (
                cases + 1,
                agree_before + (before == case.expected_pass),
                agree_after + (after == case.expected_pass),
            )
        left_out[path.name] = table
    model = verdict.fit(signals, labels, l2_penalty, trained_on=[p.name for p in files])
    return VerdictFit(model, left_out)
