"""Shared by the engine-plugged kinds: the tiny model, seeded workloads, and the workload driver.

Both halves import this module. The in-sandbox half builds the engine's ``tiny`` model (seeded
random weights, float32, CPU; no transformers import, so a sandbox starts in a second) with the
candidate's class plugged in, feeds it a workload step by step and reports what happened; the
trusted half builds the same model to compute the expected greedy tokens itself, and replays
the reported trace to check every rule. Requests arrive on a step clock (request ``r`` is added
before step ``r.arrival_step``), so a run is a pure function of the workload and the policy:
the same trace on any machine, under any load.

Every kind's module is imported by the runner of every sandbox, including sandboxes that do
not bind the engine: torch and the engine are imported inside functions, never at the top.
"""

from __future__ import annotations

import contextlib
import mmap
import random
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from grader.harnesses.base import CandidateFailure, Harness, failed_outcome
from grader.harnesses.contract import CallTiming, ProblemSpec, TestOutcome, Verdict
from grader.harnesses.timing import TimedCall

if TYPE_CHECKING:
    import torch

    from engine.config import SamplingParams
    from engine.llm_engine import LLMEngine
    from engine.sequence import Sequence
    from grader.sandbox import SandboxSession

# The tiny model's vocabulary (engine.config.MODELS["tiny"]; a test checks they agree).
VOCAB_SIZE = 10240
# The trusted side's expected tokens come from one engine with room for every request at once.
ORACLE_BLOCKS = 4096


@lru_cache(maxsize=1)
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


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread in the trusted process (a shared worker), then restore it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def params_of(request: dict[str, Any]) -> SamplingParams:
    from engine.config import SamplingParams

    return SamplingParams(
        temperature=float(request.get("temperature", 0.0)),
        top_k=int(request.get("top_k", 0)),
        top_p=float(request.get("top_p", 1.0)),
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


def expected_tokens(requests: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, list]:
    """Greedy tokens per request id from the engine's own parts, every request in one batch."""
    with one_thread():
        engine = tiny_engine(config | {"num_kv_blocks": ORACLE_BLOCKS, "max_num_seqs": 256})
        outputs = engine.generate([r["prompt"] for r in requests], [params_of(r) for r in requests])
    return {r["id"]: out.output_token_ids for r, out in zip(requests, outputs, strict=True)}


def drive(
    engine: LLMEngine,
    requests: list[dict[str, Any]],
    max_steps: int,
    clock_ns: Callable[[], int],
    on_schedule: Callable[[dict[str, Sequence], Any], None] | None = None,
) -> dict[str, Any]:
    """In the sandbox: feed ``requests`` on the step clock, step until done or ``max_steps``.

    ``on_schedule(live, plan)`` runs right after each ``schedule()`` (before the model), with
    the sequences the scheduler was given so far by request id. Returns the outputs by id, the
    steps taken, and the elapsed time of the loop.
    """
    pending = sorted(requests, key=lambda r: r["arrival_step"])
    live: dict[str, Sequence] = {}
    scheduler = engine.scheduler
    add, schedule = scheduler.add, scheduler.schedule

    def add_recorded(seq: Sequence) -> None:
        live[seq.request_id] = seq
        add(seq)

    def schedule_recorded() -> Any:
        plan = schedule()
        if on_schedule is not None:
            on_schedule(live, plan)
        return plan

    scheduler.add, scheduler.schedule = add_recorded, schedule_recorded
    outputs: dict[str, dict[str, Any]] = {}
    steps = 0
    start_ns = clock_ns()
    while steps < max_steps and (pending or engine.has_unfinished()):
        while pending and pending[0]["arrival_step"] <= steps:
            request = pending.pop(0)
            engine.add_request(
                request["prompt"],
                params_of(request),
                request_id=request["id"],
                priority=int(request.get("priority", 0)),
                arrival_time=float(request["arrival_step"]),
            )
        for out in engine.step():
            outputs[out.request_id] = {
                "tokens": out.output_token_ids,
                "error": out.error,
                "cached_tokens": out.num_cached_tokens,
            }
        steps += 1
    elapsed_ns = clock_ns() - start_ns
    return {"outputs": outputs, "steps": steps, "elapsed_ns": elapsed_ns}


def outputs_mismatch(
    outputs: dict[str, Any], expected: dict[str, list], requests: list[dict[str, Any]]
) -> str | None:
    """The first request whose output differs from the expected greedy tokens, said plainly."""
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
            return (
                f"request {rid}: output token {position} differs from greedy decoding "
                f"({len(got['tokens'])} tokens, expected {len(want)}; got "
                f"{got['tokens'][position : position + 3]}, expected {want[position : position + 3]})"
            )
    return None


class EngineHarness(Harness):
    """The trusted half's common loop for the engine kinds: one fresh input per call.

    A subclass implements :meth:`run_case` (generate the case's input from ``rng``, make the
    sandbox call, check everything, return the call's timing and figures) and :meth:`serve`.
    """

    sandbox_paths = ("engine",)
    #: the engine's own implementations of the interface: reading them is fine, submitting
    #: them (or a subclass) is not a solution.
    engine_classes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ProblemSpec) -> None:
        super().__init__(spec)
        self.calls = 0

    def shared_bytes(self) -> int:
        return mmap.PAGESIZE

    def rng(self, seed: int) -> random.Random:
        """A fresh generator for every call: the secret seed, this run's nonce, the call count."""
        self.calls += 1
        return random.Random(f"{seed}/{self.nonce}/{self.calls}")

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
            result = self.run_case(session, case, self.rng(seed), timed=False)
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

    def call(
        self, session: SandboxSession, request: dict[str, Any], case: dict[str, Any], timed: bool
    ) -> tuple[dict[str, Any], CallTiming]:
        """One sandbox request; the reply's own time is checked for shape, never believed more."""
        reply, outside_ns = session.call(request, self.timeout_s(case))
        if reply.get("reuses"):
            raise CandidateFailure(
                Verdict.POLICY,
                f"the submitted class is or extends the engine's own {reply['reuses']}; "
                "write your own implementation of the interface",
            )
        elapsed_ns = reply.get("elapsed_ns")
        if not isinstance(elapsed_ns, int) or elapsed_ns < 0:
            raise CandidateFailure(Verdict.POLICY, "the sandbox reported no valid time")
        return reply, CallTiming(elapsed_ns, outside_ns)


def engine_class_used(entry: Any, names: tuple[str, ...]) -> str | None:
    """In the sandbox: the engine class among ``names`` that ``entry`` is or extends, if any."""
    for cls in getattr(entry, "__mro__", ()):
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name in names:
            return name
    return None


@dataclass
class CaseResult:
    """What one checked call gives the loop: its timing, a message for the table, figures."""

    timing: CallTiming
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def fail(message: str, **details: Any) -> CandidateFailure:
    """A wrong answer whose message points at the fault."""
    return CandidateFailure(Verdict.WRONG_ANSWER, message, details)
