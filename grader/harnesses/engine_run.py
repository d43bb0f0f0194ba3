"""Shared by the engine-plugged kinds: the tiny model, seeded workloads, the workload driver,
and the link that lets the trusted engine ask the candidate's object for each decision.

The engine runs on the trusted side (the worker's process): the engine's ``tiny`` model
(seeded random weights, float32, CPU; no transformers import), fed a workload on a step clock
(request ``r`` is added before step ``r.arrival_step``), so a run is a pure function of the
workload and the policy: the same decisions on any machine, under any load. For each decision
the trusted side asks the candidate's object in the sandbox across the channel (a
:class:`Link`), and checks the answer before the engine uses it; the trace, the invariants and
every figure are the trusted engine's own. The problem's reference runs in this process
through the same protocol (:class:`InProcessLink`).

Every kind's module is imported by the runner of every sandbox, including sandboxes that do
not bind the engine: torch and the engine are imported inside functions, never at the top.
"""

from __future__ import annotations

import contextlib
import functools
import json
import mmap
import random
import socket
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from grader.harnesses.base import CandidateFailure, Harness, ProblemError, failed_outcome
from grader.harnesses.channel import message_receive, message_send
from grader.harnesses.contract import (
    CallTiming,
    PolicyScore,
    ProblemSpec,
    TestOutcome,
    Verdict,
)
from grader.harnesses.timing import TimedCall

if TYPE_CHECKING:
    import torch

    from engine.config import SamplingParams
    from engine.llm_engine import LLMEngine
    from grader.sandbox import SandboxSession

# The tiny model's vocabulary (engine.config.MODELS["tiny"]; a test checks they agree).
VOCAB_SIZE = 10240
# The trusted side's expected tokens come from one engine with room for every request at once,
# and a token budget that prefills them all in one step.
ORACLE_BLOCKS = 4096
ORACLE_BATCHED_TOKENS = 8192
# A greedy choice whose two best logits lie closer than this is the float32 rounding's to make:
# a batch of other rows (another schedule, a prefix read from the cache) moves the tiny model's
# gap between its two best logits by up to 2e-5 (measured over 11,658 tokens, the closest gap
# 2.7e-5), so now and then a correct part got a different, equally right token. 1 token in 300
# lies within 1e-3.
NEAR_TIE_GAP = 1e-3
# The project files an engine kind's sandbox needs whatever the part: the engine's data types
# (Sequence, Status, SamplingParams) and the allocator interface, never an implementation.
ENGINE_DATA_TYPES = (
    "engine/__init__.py",
    "engine/config.py",
    "engine/sequence.py",
    "engine/block_allocator.py",
)
# Results memoized_by_value keeps: a grade's scored tests, for its candidate and reference.
MEMOIZED_RESULTS = 4
# Answers a sandbox that is waiting mid-decision gets when the trusted side has judged the run
# (a wrong answer) before it is dropped: enough for a call stack to unwind, not a conversation.
UNWIND_ANSWERS = 8


@functools.lru_cache(maxsize=1)
def tiny_state_dict() -> dict[str, torch.Tensor]:
    """The tiny model's weights, in transformers' Llama names, from a fixed seed."""
    import torch

    from engine.config import MODELS

    m = MODELS["tiny"]
    generator = torch.Generator().manual_seed(0)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * m.init_std

    state = {"model.embed_tokens.weight": normal(m.vocab_size, m.hidden_size)}
    for layer in range(m.num_layers):
        prefix = f"model.layers.{layer}."
        state |= {
            prefix + "self_attn.q_proj.weight": normal(m.num_heads * m.head_dim, m.hidden_size),
            prefix + "self_attn.k_proj.weight": normal(m.num_kv_heads * m.head_dim, m.hidden_size),
            prefix + "self_attn.v_proj.weight": normal(m.num_kv_heads * m.head_dim, m.hidden_size),
            prefix + "self_attn.o_proj.weight": normal(m.hidden_size, m.num_heads * m.head_dim),
            prefix + "mlp.gate_proj.weight": normal(m.intermediate_size, m.hidden_size),
            prefix + "mlp.up_proj.weight": normal(m.intermediate_size, m.hidden_size),
            prefix + "mlp.down_proj.weight": normal(m.hidden_size, m.intermediate_size),
            prefix + "input_layernorm.weight": torch.ones(m.hidden_size),
            prefix + "post_attention_layernorm.weight": torch.ones(m.hidden_size),
        }
    state["model.norm.weight"] = torch.ones(m.hidden_size)
    return state


def tiny_engine(config: dict[str, Any], **parts: Any) -> LLMEngine:
    """The engine on the tiny model with ``config`` (EngineConfig fields) and plugged parts."""
    from engine.config import MODELS, EngineConfig
    from engine.llm_engine import LLMEngine

    return LLMEngine(MODELS["tiny"], EngineConfig(**config), state_dict=tiny_state_dict(), **parts)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """Torch on one thread in the trusted process (a shared worker): ``engine.driver``'s,
    imported when called, since the sandbox's engine files do not include the driver."""
    from engine.driver import one_thread as engine_one_thread

    return engine_one_thread()


def params_of(request: dict[str, Any]) -> SamplingParams:
    from engine.config import SamplingParams

    return SamplingParams(
        temperature=float(request.get("temperature", 0.0)),
        top_k=int(request.get("top_k", 0)),
        top_p=float(request.get("top_p", 1.0)),
        min_p=float(request.get("min_p", 0.0)),
        max_tokens=int(request["max_tokens"]),
        seed=int(request.get("seed", 0)),
        ignore_eos=True,
    )


def random_workload(case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Requests for one test case: ids, prompts, output lengths, priorities, arrival steps.

    ``case`` keys: ``requests``; ``prompt`` and ``long_prompt`` ([low, high] lengths) with
    ``long_fraction``; ``max_tokens`` [low, high]; ``priorities`` (choices); ``rate`` (mean
    arrivals per step, 0 = all at step 0); ``burst`` {at, requests, priority}: extra requests
    with ``prompt_burst`` lengths that all arrive at one step; ``shared_prefix`` (tokens every
    prompt starts with).
    """
    vocab = VOCAB_SIZE
    prefix = [rng.randrange(vocab) for _ in range(int(case.get("shared_prefix", 0)))]
    requests, clock = [], 0.0
    rate = float(case.get("rate", 0.0))

    def one(arrival_step: int, priority: int) -> dict[str, Any]:
        long = rng.random() < float(case.get("long_fraction", 0.0))
        low, high = case["long_prompt"] if long else case["prompt"]
        prompt = prefix + [rng.randrange(vocab) for _ in range(rng.randint(low, high))]
        return {
            "id": str(len(requests)),
            "prompt": prompt,
            "max_tokens": rng.randint(*case["max_tokens"]),
            "priority": priority,
            "arrival_step": arrival_step,
            "temperature": float(case.get("temperature", 0.0)),
            "top_k": int(case.get("top_k", 0)),
            "top_p": float(case.get("top_p", 1.0)),
            "seed": rng.randrange(2**31),
        }

    for _ in range(int(case["requests"])):
        if rate:
            clock += rng.expovariate(rate)
        requests.append(one(int(clock), rng.choice(case.get("priorities", [0]))))
    burst = case.get("burst")
    if burst:
        case = case | {"prompt": case.get("prompt_burst", case["prompt"]), "long_fraction": 0}
        for _ in range(int(burst["requests"])):
            requests.append(one(int(burst["at"]), int(burst["priority"])))
    return requests


def serial_bound(requests: list[dict[str, Any]], budget: int) -> int:
    """Steps to serve every request alone, one after another: the starvation bound."""
    last_arrival = max(r["arrival_step"] for r in requests)
    return last_arrival + sum(-(-len(r["prompt"]) // budget) + r["max_tokens"] for r in requests)


def memoized_by_value(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` remembering its last few results by the JSON of its arguments: the
    candidate's grade and the reference's run the scored tests' workloads (drawn from the seed
    alone) through the same trusted computations, which then run once per grade."""
    results: OrderedDict[str, Any] = OrderedDict()

    @functools.wraps(function)
    def memoized(*args: Any) -> Any:
        key = json.dumps(args, sort_keys=True)
        if key not in results:
            results[key] = function(*args)
            if len(results) > MEMOIZED_RESULTS:
                results.popitem(last=False)
        results.move_to_end(key)
        return results[key]

    return memoized


class ExpectedTokens(dict[str, list[int]]):
    """Tokens per request id, and ``near_ties``: per request id, the output positions where
    the oracle's two best logits lay within :data:`NEAR_TIE_GAP` (either token is right there,
    and what follows it is then the run's own)."""

    def __init__(self, tokens: dict[str, list[int]], near_ties: dict[str, frozenset[int]]):
        super().__init__(tokens)
        self.near_ties = near_ties


@memoized_by_value
def expected_tokens(requests: list[dict[str, Any]], config: dict[str, Any]) -> ExpectedTokens:
    """Greedy tokens per request id from the engine's own parts, every request in one batch,
    with the positions where rounding may choose (:class:`ExpectedTokens`)."""
    with one_thread():
        oracle = {
            "num_kv_blocks": ORACLE_BLOCKS,
            "max_num_seqs": 256,
            "max_num_batched_tokens": ORACLE_BATCHED_TOKENS,
        }
        engine = tiny_engine(config | oracle)
        near_ties = _near_ties_recorded(engine)
        outputs = engine.generate([r["prompt"] for r in requests], [params_of(r) for r in requests])
    return ExpectedTokens(
        {r["id"]: out.output_token_ids for r, out in zip(requests, outputs, strict=True)},
        {
            r["id"]: frozenset(near_ties.get(out.request_id, ()))
            for r, out in zip(requests, outputs, strict=True)
            if r.get("temperature", 0.0) == 0
        },
    )


def _near_ties_recorded(engine: LLMEngine) -> dict[str, set[int]]:
    """From now on, each output position of ``engine``'s requests whose two best logits lie
    within :data:`NEAR_TIE_GAP`, by the engine's request id (the oracle engine is ours)."""
    sample = engine.sample
    near_ties: dict[str, set[int]] = {}

    def recording(logits: torch.Tensor, seqs: list[Any]) -> torch.Tensor:
        if seqs:
            best = logits.float().topk(2, dim=-1).values
            gaps = (best[:, 0] - best[:, 1]).tolist()
            for seq, gap in zip(seqs, gaps, strict=True):
                if gap < NEAR_TIE_GAP:
                    near_ties.setdefault(seq.request_id, set()).add(seq.num_output_tokens)
        return sample(logits, seqs)

    engine.sample = recording  # type: ignore[method-assign]
    return near_ties


def drive(
    engine: LLMEngine,
    requests: list[dict[str, Any]],
    max_steps: int,
    clock_ns: Callable[[], int],
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Feed ``requests`` on the step clock, step until done or ``max_steps``: the engine's
    one driver loop (``engine.driver.drive``), in this process.

    ``on_step(step)`` names each step before it runs (and, last, the one after the end).
    Returns the outputs by id, the steps taken, and the elapsed time of the loop on
    ``clock_ns``.
    """
    from engine.driver import Run
    from engine.driver import drive as engine_drive
    from engine.workloads import Request

    workload = [
        Request(
            r["prompt"],
            params_of(r),
            float(r["arrival_step"]),
            int(r.get("priority", 0)),
            r["id"],
        )
        for r in requests
    ]

    def name_next_step(run: Run) -> None:
        if on_step is not None:
            on_step(run.steps)

    name_next_step(Run())
    start_ns = clock_ns()
    run = engine_drive(
        engine, workload, step_clock=True, max_steps=max_steps, on_step=name_next_step
    )
    elapsed_ns = clock_ns() - start_ns
    outputs = {
        out.request_id: {
            "tokens": out.output_token_ids,
            "error": out.error,
            "cached_tokens": out.num_cached_tokens,
        }
        for out in run.outputs
    }
    return {"outputs": outputs, "steps": run.steps, "elapsed_ns": elapsed_ns}


def check_same_tokens_as_engine(
    theirs: dict[str, Any],
    ours: dict[str, Any],
    requests: list[dict[str, Any]],
    complete: bool,
    against: str,
) -> None:
    """A sampling part's throughput run on the CPU against the engine's own class's on the same
    logits: the same tokens, except after a row whose decision lay within rounding, which only
    a run judged on every row (``complete``) rules out; the greedy requests must always agree.
    Raises CandidateFailure naming ``against``."""
    compared = [r for r in requests if r["temperature"] == 0 or complete]
    expected = {rid: out["tokens"] for rid, out in ours["outputs"].items()}
    wrong = outputs_mismatch(theirs["outputs"], expected, compared, against)
    if wrong:
        raise fail(f"throughput run: {wrong}")


def outputs_mismatch(
    outputs: dict[str, Any],
    expected: dict[str, list],
    requests: list[dict[str, Any]],
    against: str = "greedy decoding",
) -> str | None:
    """The first request whose output differs from the expected tokens (``against`` names
    where they come from), said plainly. Where ``expected`` is :class:`ExpectedTokens`, an
    output that first departs at a near tie is right (its length still must be)."""
    near_ties = expected.near_ties if isinstance(expected, ExpectedTokens) else {}
    for request in requests:
        rid = request["id"]
        got = outputs.get(rid)
        if got is None:
            return f"request {rid} did not finish in the steps allowed"
        if got.get("error"):
            return f"request {rid} failed in the engine: {got['error']}"
        want = expected[rid]
        if got["tokens"] != want:
            position = next(
                (i for i, (a, b) in enumerate(zip(got["tokens"], want, strict=False)) if a != b),
                min(len(got["tokens"]), len(want)),
            )
            if len(got["tokens"]) == len(want) and position in near_ties.get(rid, ()):
                continue
            return (
                f"request {rid}: output token {position} differs from {against} "
                f"({len(got['tokens'])} tokens, expected {len(want)}; got "
                f"{got['tokens'][position : position + 3]}, expected {want[position : position + 3]})"
            )
    return None


class Answer(Protocol):
    """The trusted side's answer to one question a mirror asks mid-request (raises when the
    question itself is a wrong answer)."""

    def __call__(self, question: Any) -> dict[str, Any]: ...


class Link:
    """The trusted side's conversation with the candidate's object in a sandbox, for one run.

    :meth:`call` sends a request; the sandbox may ask questions before its final reply
    (``{"ok": true, "ask": ...}``, e.g. the allocator calls a candidate's scheduler makes while
    it plans a step), each passed to ``answer`` and its answer sent back. ``outside_ns`` sums
    this side's clock around every exchange: the sandbox's share of the run, the channel
    included, nothing of the trusted engine's own work. The run's time limit covers every
    exchange; a message that is not JSON or is too large is a ``policy`` verdict (the session).

    The sandbox is frozen after every reply (one ``killpg``) and woken by the next request, so
    it can do nothing while the trusted engine computes: no work can move out of the timed
    exchanges.
    """

    def __init__(self, session: SandboxSession, timeout_s: float):
        self.session = session
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.outside_ns = 0
        self.exchanges = 0

    def call(self, request: dict[str, Any], answer: Answer | None = None) -> dict[str, Any]:
        message = request
        while True:
            reply = self._send(message)
            if "ask" not in reply:
                return reply
            if answer is None:
                raise fail(f"the sandbox asked {reply['ask']!r} where no question was expected")
            try:
                message = answer(reply["ask"])
            except CandidateFailure as failure:
                self._unwind(failure.message)
                raise

    def timing(self) -> CallTiming:
        """The run's timing: this side's clock around its exchanges (the sandbox says none)."""
        return CallTiming(0, self.outside_ns)

    def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        left_s = self.deadline - time.monotonic()
        if left_s <= 0:
            self.session.kill()
            raise CandidateFailure(
                Verdict.TIME_LIMIT, f"the run did not finish within {self.timeout_s:g} s"
            )
        reply, outside_ns = self.session.call(message, left_s)
        self.session.freeze()
        self.outside_ns += outside_ns
        self.exchanges += 1
        return reply

    def _unwind(self, why: str) -> None:
        """Tell a sandbox waiting mid-decision that the run was judged, so that its call stack
        unwinds (:class:`Aborted`) and the next test starts in step; one that keeps asking is
        stopped."""
        for _ in range(UNWIND_ANSWERS):
            try:
                reply = self._send({"abort": why})
            except CandidateFailure:
                return
            if "ask" not in reply:
                return
        self.session.kill()


class InProcessLink:
    """A link to a mirror in this process, for the problem's reference (trusted code): the same
    requests, questions and answers, each through JSON as on the channel, so the reference
    decides here exactly as it would in a sandbox."""

    outside_ns = 0

    def __init__(self, mirror: Any) -> None:
        self.mirror = mirror

    def call(self, request: dict[str, Any], answer: Answer | None = None) -> dict[str, Any]:
        def ask(question: Any) -> dict[str, Any]:
            if answer is None:
                raise ProblemError(f"the reference asked {question!r} where none was expected")
            return _through_json(answer(_through_json(question)))

        self.mirror.ask = ask
        return _through_json(self.mirror.handle(_through_json(request)))


def _through_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


class Aborted(BaseException):
    """In the sandbox: the trusted side judged the run while the candidate's code was waiting
    for an answer. A BaseException, so a candidate's ``except Exception`` does not swallow it."""


def channel_asker(control: socket.socket) -> Callable[[Any], dict[str, Any]]:
    """In the sandbox: ``ask(question)`` sends a question mid-request over the control channel
    and returns the trusted side's answer."""

    def ask(question: Any) -> dict[str, Any]:
        message_send(control, {"ok": True, "ask": question})
        answer = message_receive(control)
        if "abort" in answer:
            raise Aborted(answer["abort"])
        return answer

    return ask


def run_reference(run: Callable[[], Any]) -> Any:
    """Run the problem's reference in this process: its failures are the problem's fault."""
    try:
        return run()
    except CandidateFailure as failure:
        raise ProblemError(f"the reference failed: {failure.message}") from None
    except Exception as error:
        raise ProblemError(f"the reference raised {type(error).__name__}: {error}") from error


def reference_class(code: str, entry_point: str) -> Any:
    """A problem's reference solution's entry point, loaded in this process (trusted code)."""
    namespace: dict[str, Any] = {"__name__": "reference"}
    exec(compile(code, "reference.py", "exec"), namespace)
    return namespace[entry_point]


class EngineHarness(Harness):
    """The trusted half's common loop for the engine kinds: one fresh input per call.

    A subclass implements :meth:`run_case` (generate the case's input from ``rng``, make the
    sandbox call, check everything, return the call's timing and figures) and :meth:`serve`.
    """

    sandbox_paths = ENGINE_DATA_TYPES

    def __init__(self, spec: ProblemSpec) -> None:
        super().__init__(spec)
        self.calls = 0

    def shared_bytes(self) -> int:
        return mmap.PAGESIZE

    def rng(self, seed: int) -> random.Random:
        """A fresh generator for every call: the secret seed, this run's nonce, the call count."""
        self.calls += 1
        return random.Random(f"{seed}/{self.nonce}/{self.calls}")

    def case_rng(self, case: dict[str, Any], seed: int) -> random.Random:
        """The generator of a test's input (fresh per call, by default)."""
        return self.rng(seed)

    def timeout_s(self, case: dict[str, Any]) -> float:
        return float(case.get("time_limit_s", self.spec.limits.test_time_s))

    @abstractmethod
    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        """One checked sandbox call on a fresh input; raises CandidateFailure when wrong."""

    def run_test(self, session: SandboxSession, case: dict[str, Any], seed: int) -> TestOutcome:
        started = time.perf_counter()
        try:
            result = self.run_case(session, case, self.case_rng(case, seed), timed=False)
        except CandidateFailure as failure:
            return failed_outcome(session, case, failure, (time.perf_counter() - started) * 1e3)
        return TestOutcome(
            case["name"],
            Verdict.ACCEPTED,
            result.timing.outside_ns / 1e6,
            result.message,
            result.details,
        )

    def timed_call(self, session: SandboxSession, seed: int) -> TimedCall:
        case = self.spec.benchmark
        calls = 0

        def call() -> CallTiming:
            nonlocal calls
            calls += 1
            try:
                return self.run_case(session, case, self.rng(seed), timed=True).timing
            except CandidateFailure as failure:
                raise CandidateFailure(
                    failure.verdict, f"timed call {calls} was wrong: {failure.message}"
                ) from None

        return call


class PolicyHarness(EngineHarness):
    """An engine kind scored on what its policy decided (``Harness.policy_score``).

    Its tests marked ``score: true`` draw their workload from the secret seed alone, so the
    same policy scores the same in every grade of the same submission, and also run the
    problem's reference on it, in this process. A subclass's :meth:`run_case` stores each
    such test's figures (the candidate's and the reference's) in ``scored`` by test name;
    :meth:`merit` turns them into the score. The tests have run by the time the grader asks
    for the score, so the score costs no run of its own.
    """

    def __init__(self, spec: ProblemSpec) -> None:
        super().__init__(spec)
        self.scored: dict[str, Any] = {}

    def case_rng(self, case: dict[str, Any], seed: int) -> random.Random:
        if case.get("score"):
            return random.Random(f"{seed}/policy/{case['name']}")
        return super().case_rng(case, seed)

    def policy_score(self, session: SandboxSession, seed: int) -> PolicyScore:
        session.thaw()  # grading froze it while the reference ran its tests
        for case in self.spec.tests:
            if case.get("score") and case["name"] not in self.scored:
                self.run_case(session, case, self.case_rng(case, seed), timed=False)
        return self.merit(self.scored)

    @abstractmethod
    def merit(self, scored: dict[str, Any]) -> PolicyScore:
        """The policy's score from the scored tests' figures, and both sides' figures."""


@dataclass
class CaseResult:
    """What one checked call gives the loop: its timing, a message for the table, figures."""

    timing: CallTiming
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def fail(message: str, **details: Any) -> CandidateFailure:
    """A wrong answer whose message points at the fault."""
    return CandidateFailure(Verdict.WRONG_ANSWER, message, details)


# --- The GPU tier's throughput run ------------------------------------------------------------
# On a card (a gpu.<class> worker), the candidate's class serves a workload in the engine with
# SmolLM2-135M's shape (seeded random weights, bfloat16); without one (a cpu worker), the tiny
# model on the CPU, labelled so. The engine's own class serves the same workload in the same job.
THROUGHPUT_GPU_MODEL = "smollm2-135m-random"
THROUGHPUT_WARMUP_REQUESTS = 2


@dataclass(frozen=True)
class ThroughputTarget:
    """Where a throughput run serves: the model, its device and dtype, and the label its
    figures carry (the card's name, or ``CPU``)."""

    model: str
    device: str
    dtype: str
    label: str


def throughput_target() -> ThroughputTarget:
    """The card this worker's trusted process sees, else the CPU with the tiny model."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return ThroughputTarget(THROUGHPUT_GPU_MODEL, "cuda", "bfloat16", name)
    return ThroughputTarget("tiny", "cpu", "float32", "CPU")


@functools.lru_cache(maxsize=1)
def random_state_dict(model: str) -> dict[str, torch.Tensor]:
    """A model's seeded random weights on the CPU (the engine moves them to its device)."""
    from engine.weights import build_hf_model

    return build_hf_model(model).state_dict()


def throughput_engine(target: ThroughputTarget, config: dict[str, Any], **parts: Any) -> LLMEngine:
    """The engine on ``target`` with ``config`` (EngineConfig fields) and plugged parts."""
    from engine.bench import engine_config
    from engine.config import MODELS
    from engine.llm_engine import LLMEngine

    if target.model == "tiny":
        return tiny_engine(config, **parts)
    # The card's serving settings, as the engine's benchmark runs them (without them a step of
    # the torch reference attention costs ~90 ms, and a slow part is lost in it); scheduling
    # stays synchronous, so every decision of a plugged part is on the step's critical path.
    full = engine_config(target.device, **config, dtype=target.dtype, async_scheduling=False)
    model = MODELS[target.model]
    return LLMEngine(model, full, state_dict=random_state_dict(target.model), **parts)


def throughput_case(case: dict[str, Any], target: ThroughputTarget) -> dict[str, Any]:
    """The throughput test's case on ``target``: its ``on_gpu`` keys replace the CPU's on a card."""
    return case | (case.get("on_gpu", {}) if target.device == "cuda" else {})


def throughput_run(
    target: ThroughputTarget,
    requests: list[dict[str, Any]],
    config: dict[str, Any],
    max_steps: int,
    parts: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> dict[str, Any]:
    """Serve ``requests`` (all arriving at once) on ``target`` with the engine parts that
    ``parts(requests)`` makes, after a short warm-up run on their own engine; the wall clock
    runs from the first arrival to the last token, every decision of the parts included (a
    part linked to a sandbox: each exchange with it).

    Returns the outputs by id, the steps, and the figures: output tokens/s, TTFT and TPOT
    percentiles (ms), labelled with ``target``.
    """
    import torch

    from engine.driver import drive as engine_drive
    from engine.metrics import compute_metrics
    from engine.workloads import Request

    def workload(chosen: list[dict[str, Any]]) -> list[Request]:
        return [
            Request(r["prompt"], params_of(r), 0.0, int(r["priority"]), r["id"]) for r in chosen
        ]

    warmup = [r | {"id": f"warmup-{r['id']}"} for r in requests[:THROUGHPUT_WARMUP_REQUESTS]]

    def served(chosen: list[dict[str, Any]], steps: int | None) -> tuple[LLMEngine, Any]:
        engine = throughput_engine(target, config, **parts(chosen))
        # A linked allocator names each step in its messages (as ``drive`` does for it).
        at_step = getattr(engine.allocator, "at_step", None)
        if at_step is not None:
            at_step(0)
        on_step = (lambda run: at_step(run.steps)) if at_step is not None else None
        run = engine_drive(engine, workload(chosen), max_steps=steps, on_step=on_step)
        _close(engine)
        return engine, run

    with one_thread():
        warm, _ = served(warmup, None)
        engine, run = served(requests, max_steps)
    metrics = compute_metrics(run.outputs, run.wall_s, [], 1, 0)
    outputs = {
        out.request_id: {"tokens": out.output_token_ids, "error": out.error, "cached_tokens": 0}
        for out in run.outputs
    }
    spec = engine.spec
    del engine, warm
    if target.device == "cuda":
        torch.cuda.empty_cache()
    figures = {
        "device": target.label,
        "model": target.model,
        "requests": metrics.requests,
        "output_tokens": metrics.output_tokens,
        "steps": run.steps,
        "wall_s": round(metrics.wall_s, 4),
        "output_tokens_per_s": round(metrics.output_tokens_per_s, 1),
        "ttft_ms": {k: round(v, 2) for k, v in metrics.ttft_ms.items()},
        "tpot_ms": {k: round(v, 3) for k, v in metrics.tpot_ms.items()},
    }
    if spec is not None:  # speculative decoding: the engine's own count of accepted drafts
        figures["acceptance_rate"] = round(spec.num_accepted / max(spec.num_proposed, 1), 4)
    return {"outputs": outputs, "steps": run.steps, "figures": figures}


def sampling_mix(
    requests: list[dict[str, Any]], case: dict[str, Any], rng: random.Random
) -> list[dict[str, Any]]:
    """A serving mix for the sampler's and verifier's tiers: a ``greedy_fraction`` share of the
    requests greedy, the others sampled (seeded) with the case's temperature, top-k, top-p
    and ``min_p``."""
    share = float(case.get("greedy_fraction", 0.0))
    mixed = []
    for request in requests:
        greedy = rng.random() < share
        settings = {"temperature": 0.0} if greedy else {"min_p": float(case.get("min_p", 0.0))}
        mixed.append(request | settings)
    return mixed


class Reservoir:
    """At most ``size`` of the items offered, each offered item equally likely to be kept
    (reservoir sampling on the trusted side's generator): the calls of a long throughput run
    judged in full after it, out of its clock. The sandbox cannot tell which were kept."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.kept: list[Any] = []
        self.offered = 0

    def offer(self, make: Callable[[], Any]) -> None:
        """Offer one item, made by ``make()`` only when it is kept (a copy costs)."""
        self.offered += 1
        if len(self.kept) < self.size:
            self.kept.append(make())
            return
        slot = self.rng.randrange(self.offered)
        if slot < self.size:
            self.kept[slot] = make()


def run_deadline(session: SandboxSession, timeout_s: float) -> Callable[[], float]:
    """``left()``: the seconds left of a run's time limit, for the next exchange with the
    sandbox; past the limit the sandbox is killed and the run is a time-limit verdict."""
    deadline = time.monotonic() + timeout_s

    def left() -> float:
        seconds = deadline - time.monotonic()
        if seconds <= 0:
            session.kill()
            raise CandidateFailure(
                Verdict.TIME_LIMIT, f"the run did not finish within {timeout_s:g} s"
            )
        return seconds

    return left


def _close(engine: LLMEngine) -> None:
    """End a linked part's run with its final checks (a scheduler proxy's ``close``, an
    allocator proxy's ``flush``); the engine's own classes have nothing to end."""
    for end in (getattr(engine.scheduler, "close", None), getattr(engine.allocator, "flush", None)):
        if callable(end):
            end()


def throughput_message(theirs: dict[str, Any], ours: dict[str, Any], own: str) -> str:
    """One line for the results table: the candidate's figures against the engine's own class."""
    ratio = theirs["output_tokens_per_s"] / max(ours["output_tokens_per_s"], 1e-9)
    return (
        f"{theirs['device']} ({theirs['model']}): {theirs['output_tokens_per_s']:g} output "
        f"tokens/s, {ratio:.2f}x the engine's {own} ({ours['output_tokens_per_s']:g}); TTFT "
        f"p50/p99 {theirs['ttft_ms']['p50']:g}/{theirs['ttft_ms']['p99']:g} ms (engine "
        f"{ours['ttft_ms']['p50']:g}/{ours['ttft_ms']['p99']:g}); TPOT p50/p99 "
        f"{theirs['tpot_ms']['p50']:g}/{theirs['tpot_ms']['p99']:g} ms (engine "
        f"{ours['tpot_ms']['p50']:g}/{ours['tpot_ms']['p99']:g})"
    )
