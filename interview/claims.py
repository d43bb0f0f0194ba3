"""What a sentence claims, as far as a grader can tell without parsing: whether it asserts
anything (a predicate, not a list of topic words), whether it negates, which side of a
contrast it takes ("memory-bound" or "compute-bound", "increases" or "decreases"), and whether
it only restates the question.

The rubric judge (interview/rubric.py) uses these to refuse evidence that an embedding alone
would accept: MiniLM puts "decode is compute-bound" next to "decode is memory-bound" and
"Queues. Priority. Preempt." next to a scheduler design. Plain Python: no Django, no model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _listed(text: str) -> list[str]:
    return text.split()


# Words that make a sentence assert something on their own (copulas, auxiliaries, modals).
AUXILIARIES = frozenset(
    _listed(
        "is are was were be been being am isn't aren't wasn't weren't has have had hasn't haven't "
        "does do did doesn't don't didn't can could will would shall should must may might cannot "
        "can't won't wouldn't shouldn't it's that's there's they're we're you're what's"
    )
)
# Verbs an answer in this domain asserts with. Nouns that double as verbs (cache, block, queue,
# batch, page, swap, budget, stream, load, limit, preempt, recompute, schedule) are left out on
# purpose: "Queues. Blocks. Preempt." is a list of topics, not a claim.
_VERBS = _listed(
    "add admit affect allocate allow amortise amortize apply assign avoid become beat boost "
    "break bring build buy call carry cause change check choose collapse combine come compare "
    "compute consume contain copy cost cover create cut decide decrease define degrade depend "
    "determine divide dominate double drain drop eat eliminate emit enable end ensure estimate "
    "evict exceed expect explain fail fall fetch fill find finish fit fix follow force free "
    "gain gather generate get give go grow guarantee halve handle happen help hide hit hold "
    "hurt idle improve include increase insert join keep kill land lead leave let lift look "
    "lose lower maintain make map matter mean measure meet miss move multiply need offload "
    "overlap own pass pay pick place plan predict prefer prevent process produce propose "
    "protect provide pull push put quadruple raise reach read reduce refill reject release "
    "remain remove repeat replace require reserve reset resume return reuse rise rises route "
    "run save say saturate scale see select send serve set share shift shrink show skip slow "
    "solve sort speed split spread stall start stay stop store suffer supply support take tell "
    "tend throttle trade treat trigger try turn underutilise underutilize use vary verify wait "
    "want waste win work write yield export track monitor alert watch log record graph plot shed "
    "promote demote retry reroute restart replay benchmark profile contribute pad schedule steal "
    "order preempt recompute swap rescale resample accept rank "
    "cap sum accumulate multiply divide subtract normalise normalize look up sample pick"
)
_IRREGULAR = _listed(
    "became began bought brought built came chose cut did drew ate fell found fit gave got went "
    "grew held hit kept led left let lost made meant met paid put ran read said saw sent set "
    "shrank shrunk split spread stood took told thought wrote won done gone grown given taken "
    "shown known seen written chosen broken"
)


def _inflections(verb: str) -> set[str]:
    """A verb's finite forms; not "-ing", which alone is a noun ("iteration-level scheduling")."""
    stem = verb[:-1] if verb.endswith("e") else verb
    forms = {verb, verb + "s", verb + "es", stem + "ed", verb + "d"}
    if verb.endswith("y"):
        forms |= {verb[:-1] + "ies", verb[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgmnpt]$", verb):  # stop -> stopped
        forms.add(verb + verb[-1] + "ed")
    return forms


_VERB_STEMS = frozenset({v[:-1] if v.endswith("e") else v for v in _VERBS} | set(_VERBS))
VERB_FORMS = frozenset(
    {form for verb in _VERBS for form in _inflections(verb)} | set(_IRREGULAR) | AUXILIARIES
)
# "Memory-bound" and "bandwidth-limited" predicate on their own in note-style answers
# ("decode: memory-bound, since ..."), and so does an equation ("step time ≈ bytes / bandwidth").
PREDICATE_ADJECTIVE = re.compile(
    r"\w[-\s](?:bound|limited|bottlenecked)\b|\bbottleneck\b|\s(?:=|≈|~|→|->|<|>|≤|≥)\s"
)
FUNCTION_WORDS = (
    frozenset(
        _listed(
            "a an the of to in on at by for with from into onto per as than then so because since "
            "and or but if when while whereas although though which that who whom whose this these "
            "those it its they them their we our you your i he she his her each every all any some "
            "no not nor only also both either neither more most less least very much many few one "
            "until unless before after once over under between through about against up down out "
            "there here how why what where"
        )
    )
    | AUXILIARIES
)

NEGATION = re.compile(
    r"\b(?:not(?! only)|no|never|neither|nor|none|nothing|without|cannot|no longer"
    r"|avoid\w*|instead of|rather than|ignor\w*|unnecessary|needless|irrelevant)\b|n't\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Contrast:
    """Two sides of a claim where saying one states the other wrongly."""

    name: str
    first: re.Pattern[str]
    second: re.Pattern[str]
    swaps: tuple[tuple[str, str], ...]  # word-level substitutions that state the other side


def _contrast(name: str, first: str, second: str, swaps: Iterable[tuple[str, str]]) -> Contrast:
    return Contrast(
        name, re.compile(first, re.IGNORECASE), re.compile(second, re.IGNORECASE), tuple(swaps)
    )


_MEMORY = (
    r"(?:memory|bandwidth|hbm|memory[-\s]bandwidth)[-\s](?:bound|limited|bottlenecked)"
    r"|(?:limited|bound|bottlenecked|set|dominated) by (?:the )?(?:memory|hbm|bandwidth|how fast)"
    r"|weight reads|reading (?:the )?weights"
)
_COMPUTE = (
    r"(?:compute|flops?|math|arithmetic)[-\s](?:bound|limited|bottlenecked)"
    r"|(?:limited|bound|bottlenecked|set|dominated) by (?:the )?(?:compute|flops?|arithmetic"
    r"|tensor cores?|matmul throughput)"
)
CONTRASTS: tuple[Contrast, ...] = (
    _contrast(
        "bound",
        _MEMORY,
        _COMPUTE,
        [
            ("memory-bound", "compute-bound"),
            ("memory bound", "compute bound"),
            ("bandwidth-bound", "compute-bound"),
            ("memory-bandwidth bound", "compute-bound"),
            ("compute-bound", "memory-bound"),
            ("compute bound", "memory bound"),
            ("FLOP/s", "memory bandwidth"),
        ],
    ),
    _contrast(
        "phase",
        r"\bdecod\w*|token generation|generating (?:each|one|the next|new) token"
        r"|generation (?:step|phase|iteration)s?",
        r"\bprefill\w*|prompt (?:processing|phase|pass)|processing the (?:prompt|input)",
        [
            ("Decode", "Prefill"),
            ("decode", "prefill"),
            ("Prefill", "Decode"),
            ("prefill", "decode"),
        ],
    ),
    _contrast(
        "direction",
        r"\b(?:increas\w*|rais\w*|grow\w*|grew|higher|larger|bigger|more|rises?|rising"
        r"|doubl\w*|longer|lengthen\w*|faster|add\w*)\b",
        r"\b(?:decreas\w*|reduc\w*|lower\w*|shrink\w*|shrank|smaller|less|fewer|falls?"
        r"|drops?|halv\w*|shorter|shorten\w*|slower|cuts?|remov\w*)\b",
        [
            ("increases", "decreases"),
            ("increase", "decrease"),
            ("raises", "lowers"),
            ("grows", "shrinks"),
            ("higher", "lower"),
            ("larger", "smaller"),
            ("more", "less"),
            ("faster", "slower"),
            ("longer", "shorter"),
            ("cuts", "raises"),
            ("lowers", "raises"),
            ("reduces", "increases"),
            ("fewer", "more"),
            ("adds", "removes"),
        ],
    ),
    _contrast(
        "extreme",
        r"\b(?:highest|largest|biggest|most important|most (?:likely|probable)|top(?![-\s]?[kp]\b))\b",
        r"\b(?:lowest|smallest|least important|least(?![-\s]recently)|bottom)\b",
        [("highest", "lowest"), ("largest", "smallest")],
    ),
    _contrast(
        "position",
        r"\babove\b|\bexceed\w*",
        r"\bbelow\b|\bfalls? short of\b",
        [("above", "below"), ("below", "above")],
    ),
    _contrast(
        "maximum",
        r"\bmax(?:imum|ima)?\b",
        r"\bmin(?:imum|ima)?\b(?![-\s]?p\b)",
        [("maximum", "minimum"), ("max", "min")],
    ),
    _contrast(
        "aggregate",
        r"\bsum(?:s|med|ming)?\b|\bsummation\b",
        r"\bproducts?\b",
        [("sum", "product")],
    ),
    _contrast(
        "passes",
        r"\b(?:one|a single|single|the same) (?:forward )?(?:pass|sweep)\b|\b(?:one|single)-pass\b",
        r"\b(?:two|second|separate|another|extra|multiple|several) (?:forward )?(?:pass(?:es)?|sweeps?)\b"
        r"|\btwo-pass\b",
        [("one pass", "two passes"), ("one forward pass", "separate forward passes")],
    ),
    _contrast(
        "bounded",
        r"(?<!un)\b(?:bounded|capped|fixed[-\s](?:size|capacity)|size[-\s]limited|small)\b",
        r"\b(?:unbounded|unlimited|infinite|without (?:any )?(?:limit|bound)|every token in memory)\b",
        [("bounded", "unbounded")],
    ),
    _contrast(
        "stop",
        r"\b(?:cancel\w*|abort\w*|stop\w*|paus\w*|halt\w*)\b",
        r"\bkeeps? (?:generating|decoding|going)|\bcontinu\w* (?:generating|decoding)",
        [("stop generating", "keep generating"), ("cancel", "keep generating")],
    ),
    _contrast(
        "scaling",
        r"(?<![-\w])linear(?:ly)?\b(?![-\s]layer)",
        r"\b(?:sub[-\s]?linear(?:ly)?|quadratic(?:ally)?|super[-\s]?linear(?:ly)?"
        r"|constant|diminishing|stays? (?:the same|constant|fixed)|independent of)\b",
        [("linearly", "quadratically"), ("linear", "quadratic"), ("quadratic", "linear")],
    ),
    _contrast(
        "sameness",
        r"(?<!almost the )(?<!nearly the )\b(?:same|identical|exact(?:ly)?|lossless|unchanged"
        r"|preserv\w*)\b",
        r"\b(?:differ\w*|degrad\w*|approximat\w*|lossy|chang\w*|lower quality|worse|fuzzy"
        r"|(?:almost|nearly) the same)\b",
        [("exactly", "approximately"), ("identical", "degraded"), ("same", "different")],
    ),
    _contrast(
        "arithmetic",
        r"\bdivid\w*",
        r"\bmultipl\w*",
        [("divides", "multiplies")],
    ),
    _contrast(
        "determinism",
        r"(?<![-\w])determinis\w*|\bargmax\b",
        r"\b(?:at random|randomly|stochastic\w*|non-?determinis\w*)\b",
        [("deterministic", "random")],
    ),
    _contrast(
        "recency",
        r"\bleast[-\s]recently\b|\blru\b",
        r"\bmost[-\s]recently\b|\bmru\b",
        [("least-recently-used", "most-recently-used"), ("least recently", "most recently")],
    ),
    _contrast(
        "isolation",
        r"\b(?:separate|dedicated|isolated|own) (?:pools?|fleets?|clusters?|workers?)\b",
        r"\b(?:same|shared|one|single|common) (?:pools?|fleets?|clusters?)\b",
        [("separate pool", "same pool")],
    ),
    _contrast(
        "spread",
        r"\b(?:across|over|multiple|several|many|two or more) (?:\w+ )?(?:zones|regions)\b"
        r"|\bmulti-(?:zone|region)\b",
        r"\b(?:a single|single|one) (?:zone|region)\b",
        [("across zones", "in a single zone")],
    ),
    _contrast(
        "chunking",
        r"\b(?:chunk\w*|slices?|sliced|in pieces|split (?:in|into))\b",
        r"\bin (?:one|a single) (?:go|piece|pass|shot|chunk)\b|\ball at once\b|\bunchunked\b",
        [("chunked prefill", "one-shot prefill")],
    ),
    _contrast(
        "release",
        r"\b(?:free(?:s|d|ing)?|releas\w*|reclaim\w*|return\w* to the (?:pool|free list))\b",
        r"\b(?:stays?|remains?|kept|keeps?) (?:allocated|reserved|held)|\bnever freed\b|\bleak\w*",
        [("freeing", "keeping allocated")],
    ),
    _contrast(
        "resume",
        r"\bresum\w*|\bfrom the last\b|\bwhere it (?:left|stopped)\b",
        r"\brestart\w* from (?:the )?(?:first|beginning|start|scratch)|\bfrom scratch\b",
        [("resume", "restart")],
    ),
    _contrast(
        "cached",
        r"\bkeys?(?![-\s]heads?)\b|\bvalues?\b|\bk/v\b|\bkv\b(?![-\s]cache)",
        r"\bquer(?:y|ies)\b|\b(?:final )?responses\b|\boutputs\b|\bcompletions\b",
        [],
    ),
)


def words(text: str) -> list[str]:
    """Lower-case words and numbers of `text` (hyphenated words split)."""
    return WORD.findall(text.lower().replace("’", "'"))


def content_words(text: str) -> set[str]:
    """The words of `text` that carry topic: no function words, plural "s" dropped."""
    return {
        _stem(w.removesuffix("'s")) for w in words(text) if w not in FUNCTION_WORDS and len(w) > 1
    }


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    word = word[:-1] if word.endswith("e") and len(word) > 3 else word
    # "failure" and "fail" are one word to a reader.
    return word[:-2] if word.endswith("ur") and len(word) > 5 else word


# A claim has at least this many words; "KV cache" or "Preempt." assert nothing.
MIN_CLAIM_WORDS = 3
# Grammatical English sentences of this length are at least this share function words; a
# topic-word salad with one "is" in it is not ("Decode is memory bandwidth HBM weights batch").
MIN_FUNCTION_SHARE = 0.15
FUNCTION_SHARE_MIN_WORDS = 7


def is_claim(text: str) -> bool:
    """Whether `text` asserts something: enough words and a predicate. A predicate that is only
    a copula or an auxiliary ("is", "has") must also come with the grammar of a sentence rather
    than a list of topic words ("Decode is memory bandwidth HBM weights batch KV cache")."""
    tokens = words(text)
    if len(tokens) < MIN_CLAIM_WORDS:
        return False
    if any(t in VERB_FORMS and t not in AUXILIARIES for t in tokens):
        return True
    if any(_participle_with_object(t, n) for t, n in zip(tokens, tokens[1:], strict=False)):
        return True
    if not (any(t in AUXILIARIES for t in tokens) or PREDICATE_ADJECTIVE.search(text)):
        return False
    if len(tokens) >= FUNCTION_SHARE_MIN_WORDS:
        share = sum(t in FUNCTION_WORDS for t in tokens) / len(tokens)
        return share >= MIN_FUNCTION_SHARE
    return True


# A sentence of at least this many comma-separated items, most of them this short, is a list.
LIST_MIN_ITEMS = 3
LIST_ITEM_MAX_WORDS = 3


def is_topic_list(sentence: str) -> bool:
    """Whether `sentence` is a list of topics ("Speculative decoding: draft, verify, acceptance
    rate, rejection sampling") rather than a claim about a list ("We monitor p99 TTFT, TPOT and
    queue depth"): mostly short items, and none of the longer ones a claim."""
    items = [i for i in re.split(r"[,;:/]", sentence) if i.strip()]
    if len(items) < LIST_MIN_ITEMS:
        return False
    lengths = sorted(len(words(i)) for i in items)
    if lengths[len(lengths) // 2] > LIST_ITEM_MAX_WORDS:
        return False
    return not any(len(words(i)) > LIST_ITEM_MAX_WORDS and is_claim(i) for i in items)


_OBJECT_STARTS = frozenset(
    _listed(
        "a an the its their each every all it them this that these those some more less fewer up "
        "out down off one two"
    )
)


def _participle_with_object(word: str, following: str) -> bool:
    """ "keeping a running max" asserts; "iteration-level scheduling" names a topic."""
    return word.endswith("ing") and word[:-3] in _VERB_STEMS and following in _OBJECT_STARTS


def negated(text: str) -> bool:
    """Whether `text` negates (not, never, without, instead of, avoids, ...)."""
    return bool(NEGATION.search(text))


# Where a statement's head ends: what follows qualifies it ("..., since one GPU cannot hold it").
HEAD_END = re.compile(
    r"[,;:(]|\s(?:since|because|so|which|while|whereas|but|instead of|rather than)\s",
    re.IGNORECASE,
)


def head_negated(statement: str) -> bool:
    """Whether a reference statement's head negates: its polarity, ignoring the reasons and
    contrasts it adds after a comma or "since"."""
    return negated(HEAD_END.split(statement, maxsplit=1)[0])


def sides(text: str) -> dict[str, frozenset[int]]:
    """For each contrast, which of its sides `text` takes: {0}, {1}, both or neither."""
    return {
        c.name: frozenset(i for i, p in enumerate((c.first, c.second)) if p.search(text))
        for c in CONTRASTS
    }


# The tail of a statement that names what it is not ("..., instead of buffering without limit").
CONTRAST_TAIL = re.compile(r",?\s*\b(?:instead of|rather than)\b[^.;,]*", re.IGNORECASE)


def affirmed_sides(statement: str) -> dict[str, frozenset[int]]:
    """The sides a statement takes in what it affirms: its "instead of ..." tail names the other
    side, so "a bounded buffer instead of buffering without limit" takes the bounded side only."""
    return sides(CONTRAST_TAIL.sub("", statement) or statement)


def rejected_sides(statement: str) -> dict[str, frozenset[int]]:
    """The sides a statement rejects in its "instead of ..." tail and does not take itself:
    "reject it early rather than queueing without limit" rejects the unbounded side."""
    affirmed = affirmed_sides(statement)
    tails = " ".join(m.group(0) for m in CONTRAST_TAIL.finditer(statement))
    return {name: side - affirmed[name] for name, side in sides(tails).items()}


def embraces_rejected(
    answer_affirmed: dict[str, frozenset[int]], rejected: dict[str, frozenset[int]]
) -> bool:
    """Whether an answer unit affirms only a side that the reference rejects ("every request is
    queued without limit" against "... rather than queueing without limit")."""
    return any(
        len(answer_affirmed[name]) == 1 and answer_affirmed[name] <= side
        for name, side in rejected.items()
        if side
    )


def conflicts(
    answer_sides: dict[str, frozenset[int]], reference_sides: dict[str, frozenset[int]]
) -> bool:
    """Whether an answer unit takes only the other side of a contrast the reference takes
    only one side of ("decode is compute-bound" against "decode is memory-bound")."""
    for name, reference in reference_sides.items():
        answer = answer_sides[name]
        if len(reference) == 1 and len(answer) == 1 and answer != reference:
            return True
    return False


def contrast_swaps(reference: str) -> list[str]:
    """Near-miss wrong versions of a reference claim: one contrast word swapped at a time, either
    way ("Higher TP leaves more memory" -> "Lower TP leaves more memory", "Higher TP leaves less
    memory"), each a claim that says the reference's fact the wrong way round."""
    variants = []
    for contrast in CONTRASTS:
        for old, new in {*contrast.swaps, *((b, a) for a, b in contrast.swaps)}:
            pattern = re.compile(rf"(?<![\w-]){re.escape(old)}(?![\w-])", re.IGNORECASE)
            for match in pattern.finditer(reference):
                word = new[0].upper() + new[1:] if match.group(0)[0].isupper() else new
                variant = reference[: match.start()] + word + reference[match.end() :]
                if variant not in variants and variant != reference:
                    variants.append(variant)
    return sorted(variants)


def affirmative_variant(reference: str) -> str | None:
    """A reference without its trailing contrast ("..., instead of waiting for the batch"), so an
    answer that states the point without the contrast can match a reference of its polarity."""
    stripped = re.sub(
        r",?\s*(?:instead of|rather than|not)\b[^,.;]*", "", reference, flags=re.IGNORECASE
    ).strip()
    if stripped and stripped != reference and not negated(stripped) and is_claim(stripped):
        return stripped
    # "The keys are processed tile by tile in one sweep, so the scores never sit in memory":
    # its head states the point affirmatively, and an answer that says only that matches it.
    head = HEAD_END.split(reference, maxsplit=1)[0].strip()
    if (
        head != reference.strip()
        and negated(reference)
        and not negated(head)
        and len(words(head)) >= MIN_HEAD_WORDS
        and is_claim(head)
    ):
        return head
    return None


# A statement's head stands for it alone only with at least this many words.
MIN_HEAD_WORDS = 5


def restates(text: str, question: str) -> bool:
    """Whether every topic word of `text` is already in the question."""
    if not question:
        return False
    own = content_words(text)
    return bool(own) and own <= content_words(question)


# Words that say nothing specific about serving LLMs: vague nouns ("things", "factors"), verbs
# that relate without saying how ("handles", "depends on", "matters", "works together"),
# praise and hedges ("important", "carefully"), and nouns every answer here names (the model,
# the GPU, the system, requests, the workload). A sentence made of these and the question's own
# words names its topic without claiming anything about it.
GENERIC_WORDS = frozenset(
    _stem(w)
    for w in _listed(
        "thing things stuff something anything everything way ways part parts aspect aspects "
        "factor factors kind kinds lot lots problem problems issue issues option options setting "
        "settings case cases situation situations practice people team detail details matter "
        "role difference differences point points sense terms "
        "use uses used using need needs needed handle handles handled handling deal deals dealt "
        "manage manages managed work works worked working make makes made help helps helped "
        "affect affects affected matters depend depends depending depended involve involves "
        "involved go goes going gone get gets getting got compete competes pick picks choose "
        "chooses chosen consider considers considered come comes coming behave behaves "
        "keep keeps kept track tracks look looks looking want wants find fix invest investing "
        "do does doing done happen happens play plays deal "
        "important importance good bad right wrong careful carefully big huge various several "
        "different differently certain well better best quick quickly efficient efficiently "
        "proper properly together consistent correct correctly possible worth key main overall "
        "general generally usually typically really actually basically simply "
        "model models gpu gpus system systems server servers serving serve request requests "
        "workload workloads hardware platform service services performance inference "
        "phase phases result results data change changes changed stay stays break breaks nothing "
        "run runs limit limits next final piece pieces engine engines share shares shared policy "
        "policies strategy strategies approach approaches mechanism mechanisms solution solutions "
        # Words of the design process and of judgement, not of serving: "the team has to think
        # about what happens at long context", "it must be configured well", "handle failures
        # gracefully", "the right techniques make a big difference".
        "everyone everybody everything anyone anybody someone somebody mind tool tools technique "
        "techniques question questions answer answers production team teams design designed "
        "designing plan plans planned planning reliable reliably reliability robust robustly "
        "gracefully cleverly clever smart smartly other others like whether hard harder easy "
        "easier difficult simple challenge challenges challenging tricky think thinks thought "
        "prefer prefers preferred suit suits suited treat treats treated hurt hurts configure "
        "configures configured tune tuned pay paying paid mean means meaning "
        "later hand hands turn turns fine nice great ideal ideally right-sized "
        "goal goals aim aims wisely sensible sensibly appropriate appropriately "
        "experience careful thinking account accounts address addresses addressed "
        "consideration considerations concern concerns tradeoff tradeoffs trade-off trade-offs "
        "decision decisions decide decides relevant crucial critical essential vital"
    )
)
# A sentence needs at least this many words beyond the question's and the generic ones to claim
# something: "Memory is what caps the batch" answers "What caps the batch?" with one word.
MIN_INFORMATIVE_WORDS = 2
# ... and one more for every this many words it is long.
WORDS_PER_INFORMATIVE = 8


def informative_words(text: str, question: str = "") -> set[str]:
    """The topic words of `text` that are neither the question's nor generic (GENERIC_WORDS)."""
    return content_words(text) - content_words(question) - GENERIC_WORDS


def says_nothing(text: str, question: str = "") -> bool:
    """Whether `text` only names its topic: fewer than MIN_INFORMATIVE_WORDS words beyond the
    question's and generic ones, and no number ("The allocator needs operations for handling
    the blocks" to "What operations does it need?")."""
    # A number states something, unless the question gave it: "what happens at 128K tokens"
    # restates a 128K-token question.
    if set(NUMBER.findall(text.lower())) - set(NUMBER.findall(question.lower())):
        return False
    # A long sentence with two specific words in it is filler around them: "The system needs
    # to be designed with long sequences in mind from the start, and the team has to think
    # about what happens at 128K tokens so that the service keeps working for everyone."
    needed = max(MIN_INFORMATIVE_WORDS, math.ceil(len(words(text)) / WORDS_PER_INFORMATIVE))
    return len(informative_words(text, question)) < needed


NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


# ---------------------------------------------------------------- numbers as claims

_SCALE = {"": 1.0, "k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9}
_UNITS = {
    "bytes": ("bytes", 1.0), "byte": ("bytes", 1.0),
    "kb": ("bytes", 1e3), "mb": ("bytes", 1e6), "gb": ("bytes", 1e9), "tb": ("bytes", 1e12),
    "kib": ("bytes", 2.0**10), "mib": ("bytes", 2.0**20), "gib": ("bytes", 2.0**30),
    "tib": ("bytes", 2.0**40),
    "ns": ("seconds", 1e-9), "us": ("seconds", 1e-6), "µs": ("seconds", 1e-6),
    "ms": ("seconds", 1e-3), "s": ("seconds", 1.0), "sec": ("seconds", 1.0),
    "second": ("seconds", 1.0), "seconds": ("seconds", 1.0), "minutes": ("seconds", 60.0),
    "%": ("percent", 1.0), "percent": ("percent", 1.0),
    "tokens": ("tokens", 1.0), "token": ("tokens", 1.0),
    "parameters": ("parameters", 1.0), "params": ("parameters", 1.0),
}  # fmt: skip
QUANTITY = re.compile(
    r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(k|m|b|thousand|million|billion)?\b\s*"
    r"(kib|mib|gib|tib|kb|mb|gb|tb|bytes?|ns|us|µs|ms|sec|seconds?|minutes|s|%|percent"
    r"|tokens?|parameters|params)?(?![\w/])",
    re.IGNORECASE,
)
# A number this close (relative) to one the rubric states is the same number.
NUMBER_TOLERANCE = 0.25
# Slips a fluent wrong answer makes: an order of magnitude, a unit prefix (kB for MB, KiB for
# MB), or a factor of two (bytes per value, K and V). A ratio within SLIP_TOLERANCE of one of
# these to a number the rubric states, and near none of them, contradicts it.
SLIP_FACTORS = (2.0, 10.0, 100.0, 1000.0, 1024.0, 1e6, 2.0**20)
SLIP_TOLERANCE = 0.12
# Where a sentence divides a quantity (per GPU, TP=4, a shard), a factor of 2 to 8 is arithmetic.
DIVIDED = re.compile(
    r"\b(?:per|each) (?:gpu|card|device|rank|shard|replica)\b|\btp\s*=|\bsplit\b|\bshard\w*"
    r"|\bhalf\b|\bquarter\b",
    re.IGNORECASE,
)


def quantities(text: str) -> list[tuple[str, float]]:
    """The quantities `text` states, as (dimension, value in base units): bytes, seconds, percent,
    tokens, parameters ("70B" is 70e9 parameters). Bare numbers are left out: a "2" in a formula
    is no quantity."""
    found = []
    for match in QUANTITY.finditer(text):
        number, scale, unit = match.group(1), (match.group(2) or "").lower(), match.group(3)
        value = float(number.replace(",", "")) * _SCALE[scale]
        if unit:
            dimension, factor = _UNITS[unit.lower()]
            found.append((dimension, value * factor))
        elif scale in ("b", "billion", "million"):  # "70B", "135 million"; "2M" may be anything
            found.append(("parameters", value))
    return found


def number_slip(text: str, reference_quantities: Iterable[tuple[str, float]]) -> bool:
    """Whether `text` states a quantity that the rubric's quantities contradict: off from one of
    them by a typical slip (10×, 1000×, a unit prefix, 2×) and close to none of them. A quantity
    unlike any of them (another model's figure) contradicts nothing."""
    references = list(reference_quantities)
    divided = bool(DIVIDED.search(text))
    for dimension, value in quantities(text):
        same = [r for d, r in references if d == dimension and r > 0]
        if not same or value <= 0 or any(abs(value / r - 1) <= NUMBER_TOLERANCE for r in same):
            continue
        for reference in same:
            ratio = max(value, reference) / min(value, reference)
            factors = [f for f in SLIP_FACTORS if not (divided and f <= 8)]
            if any(abs(ratio / f - 1) <= SLIP_TOLERANCE for f in factors):
                return True
    return False
