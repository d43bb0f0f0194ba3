"""The ``sampler`` kind: the candidate's ``Sampler`` turns logits into tokens, row by row.

The trusted side draws every input (logits, per-row settings and one uniform per row, from
the secret seed) and keeps it; the sandbox receives them through the shared memory and
returns the candidate's ``probs`` and ``sample`` outputs there, nothing else
(``grader/harnesses/remote.py``). The trusted side judges each output with the problem's
``oracle.py`` (exact float64 target, ``target_probs``; the token each uniform selects,
``sample_expected``): where float32 rounding may move a filter's threshold, either decision
is accepted, and a uniform within 2e-6 of a bin edge is not judged:

* ``probs``: every value within tolerance of the target, and exactly 0 where the target is 0
  (a token a filter removes must never be drawn); the failing row's settings are named;
* every ``sample`` output, in every test and every timed call: each judged row's token is the
  one its uniform selects (greedy rows: the first argmax);
* ``chisq`` tests: one row repeated thousands of times with fresh uniforms; besides each
  token, the counts must pass a chi-square goodness-of-fit test against the exact target;
* ``repro`` tests: the same batch twice, then shuffled, in one exchange: every row gets the
  same token each time (rounding may choose, but must choose the same way);
* ``engine`` tests: the engine runs in the trusted process with ``RemoteSampler``, which
  sends each step's logits to the candidate's sampler and checks every token before the
  engine appends it.

The timed call is ``calls`` back-to-back ``sample`` calls in one exchange, each on a fresh
batch of 16 rows over a 49,152-token vocabulary (SmolLM2's) with mixed settings, every token
checked; it is timed by the trusted clock alone, from waking the sandbox to its reply.

Power, computed exactly over the uniforms and averaged over 50 draws of each test's inputs by
``benchmarks/sampling_power.py`` (all its figures in ``benchmarks/sampling_power.json`` and
``grader/README.md``): a forgotten or 2%-wrong temperature, a dropped top-k, top-p or min-p
(or top-p dropped at 0.99 and above only, min-p under top-k only), top-k without its ties, an
argmax in place of a draw and a last argmax for greedy rows each pass the tests with
probability below 1e-10. A sampler wrong on the benchmark only is left to the timed calls,
each of which misses an argmax with probability 5e-7 and a dropped top-p with 0.16.
"""

from __future__ import annotations

import mmap
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import CandidateFailure, ProblemError, clock_ns, oracle_load
from grader.harnesses.contract import CallTiming
from grader.harnesses.engine_run import (
    THROUGHPUT_GPU_MODEL,
    CaseResult,
    EngineHarness,
    Reservoir,
    check_same_tokens_as_engine,
    drive,
    fail,
    one_thread,
    random_workload,
    run_deadline,
    sampling_mix,
    serial_bound,
    throughput_case,
    throughput_message,
    throughput_run,
    throughput_target,
    tiny_engine,
)
from grader.harnesses.registry import register
from grader.harnesses.remote import (
    POISON_INT64,
    Arena,
    candidate_object,
    diagnostic,
    slot_bytes,
    tensor_view,
    tensor_write,
)

if TYPE_CHECKING:
    import torch

    from grader.sandbox import SandboxSession

SETTINGS = ("temperature", "top_k", "top_p", "min_p")
# A correct sampler fails a chi-square test at this p-value once in a million runs.
CHI_SQUARE_P_FLOOR = 1e-6
# The engine tests' vocabulary (the tiny model's) and most rows a step samples at once.
ENGINE_SHAPE = (16, 10240)
# The throughput test's engine sizes (EngineConfig fields).
THROUGHPUT_KEYS = ("block_size", "num_kv_blocks", "max_num_seqs", "max_num_batched_tokens")
# Steps of a throughput run judged in full by the oracle, after the run, unless the case says:
# on the CPU (the tiny model, about 50 steps) every one.
JUDGED_STEPS = 1024


def gpu_vocab() -> int:
    """The vocabulary of the model a throughput test serves on a card."""
    from engine.config import MODELS

    return MODELS[THROUGHPUT_GPU_MODEL].vocab_size


def batch_inputs(case: dict[str, Any], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [rows, vocab] float32, packed settings [5, rows] float64) for one call.

    The packed rows are ``SamplingBatch.pack()``'s: temperature, top_k, top_p, min_p (as the
    sampler sees them) and the uniforms. Each row draws its settings from the case's lists;
    a ``chisq`` case repeats one row of logits and one choice of settings.
    """
    import torch

    from engine.sampler import SamplingBatch

    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    rows, vocab = int(case["rows"]), int(case["vocab"])
    fill = case.get("fill", "normal")
    scale = float(case.get("scale", 2.0))
    repeated = case.get("mode") == "chisq"
    if repeated:
        logits = (torch.randn(1, vocab, generator=generator) * scale).expand(rows, vocab)
    elif fill == "ties":
        logits = torch.randint(0, 4, (rows, vocab), generator=generator).float()
    else:
        logits = torch.randn(rows, vocab, generator=generator) * scale
    logits = logits.contiguous()
    if fill == "neg_inf":
        masked = torch.rand(rows, vocab, generator=generator) < 0.7
        masked[:, 0] = False
        logits = logits.masked_fill(masked, float("-inf"))
        logits[0, 1:] = float("-inf")  # one row with a single finite logit
    choices = case["settings"]
    drawn = 1 if repeated else rows
    settings = [[float(rng.choice(choices[name])) for _ in range(drawn)] for name in SETTINGS]
    packed = torch.tensor(settings, dtype=torch.float64).expand(4, rows)
    uniforms = torch.tensor([rng.random() for _ in range(rows)], dtype=torch.float64)
    return logits, SamplingBatch.unpack(torch.cat([packed, uniforms[None]])).pack()


def chi_square(counts: list[int], probs: list[float]) -> tuple[float, int, float]:
    """(statistic, degrees of freedom, p-value); cells with expected count < 5 are pooled."""
    import torch

    draws = sum(counts)
    cells, pooled_seen, pooled_expected = [], 0, 0.0
    for seen, p in zip(counts, probs, strict=True):
        if p <= 0:
            continue
        if draws * p < 5:
            pooled_seen, pooled_expected = pooled_seen + seen, pooled_expected + draws * p
        else:
            cells.append((seen, draws * p))
    if pooled_expected > 0:
        cells.append((pooled_seen, pooled_expected))
    statistic = sum((seen - want) ** 2 / want for seen, want in cells)
    dof = max(len(cells) - 1, 1)
    p_value = float(
        torch.special.gammaincc(
            torch.tensor(dof / 2, dtype=torch.float64),
            torch.tensor(statistic / 2, dtype=torch.float64),
        )
    )
    return statistic, dof, p_value


def describe(packed: torch.Tensor, row: int) -> str:
    """A row's settings in words, e.g. ``temperature 0.7, top_k 0, top_p 0.9, min_p 0``."""
    values = packed[:4, row].tolist()
    return ", ".join(f"{name} {value:g}" for name, value in zip(SETTINGS, values, strict=True))


@dataclass
class Sampled:
    """One exchange's outputs, read back and judged: tokens (and probs) per call."""

    tokens: list[torch.Tensor] = field(default_factory=list)
    probs: list[torch.Tensor | None] = field(default_factory=list)
    rows: int = 0
    judged: int = 0


@dataclass
class _SampleRecord:
    """One throughput run's record of the candidate's answers, judged after the run: per step
    the greedy rows' first argmax, and the steps a reservoir kept in full."""

    steps: Reservoir
    greedy: list[tuple[int, Any, Any, Any]] = field(default_factory=list)
    exchange_ns: int = 0


@register
class SamplerHarness(EngineHarness):
    kind = "sampler"
    version = "2"
    # The interface and its data types; the engine's own sampler is not there to import.
    sandbox_paths = ("engine/__init__.py", "engine/config.py", "engine/sampler.py")

    def __init__(self, spec) -> None:
        super().__init__(spec)
        oracle = oracle_load(spec.oracle_code, ("target_probs", "sample_expected"))
        self.target_probs = oracle["target_probs"]
        self.sample_expected = oracle["sample_expected"]

    def shared_bytes(self) -> int:
        sizes = [self._exchange_bytes(*ENGINE_SHAPE, calls=1, with_probs=True)]
        for case in [*self.spec.tests, self.spec.benchmark]:
            if case.get("throughput"):  # one step's logits, on the CPU or on a card
                rows = max(int(case["max_num_seqs"]), int(case.get("on_gpu", {}).get(
                    "max_num_seqs", 0)))  # fmt: skip
                vocab = max(ENGINE_SHAPE[1], gpu_vocab() if "on_gpu" in case else 0)
                sizes.append(self._exchange_bytes(rows, vocab, calls=1, with_probs=False))
                continue
            if case.get("mode") == "engine":
                continue
            calls = 3 if case.get("mode") == "repro" else int(case.get("calls", 1))
            rows, vocab = int(case["rows"]), int(case["vocab"])
            sizes.append(self._exchange_bytes(rows, vocab, calls, case.get("mode") == "probs"))
        return max(sizes)

    @staticmethod
    def _exchange_bytes(rows: int, vocab: int, calls: int, with_probs: bool) -> int:
        one = slot_bytes("float32", rows, vocab) + slot_bytes("float64", 5, rows)
        one += slot_bytes("int64", rows) + with_probs * slot_bytes("float32", rows, vocab)
        return calls * one

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        # One thread: in a shared worker a second one spinning for work tripled the CPU time
        # of drawing and judging the inputs.
        with one_thread():
            return self._run_case(session, case, rng, timed)

    def _run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        if case.get("throughput"):
            return self._throughput(session, case, rng)
        mode = case.get("mode", "probs")
        if mode == "engine":
            return self._engine_case(session, case, rng)
        calls = int(case.get("calls", 1))
        batches = [batch_inputs(case, rng.randrange(2**62)) for _ in range(calls)]
        logits, packed = batches[0]
        if mode == "repro":
            permutation = list(range(logits.shape[0]))
            rng.shuffle(permutation)
            batches = [(logits, packed)] * 2 + [(logits[permutation], packed[:, permutation])]
        sampled = Sampled()
        timing = self.sample_checked(session, case, batches, mode == "probs", sampled)
        details = {"rows_judged": sampled.judged, "rows": sampled.rows}
        if mode == "chisq":
            return self._check_chi_square(timing, sampled.tokens[0], logits, packed, details)
        if mode == "repro":
            self._check_repro(sampled.tokens, permutation)
        return CaseResult(timing, self._judged_note(sampled), details)

    @staticmethod
    def _judged_note(sampled: Sampled) -> str:
        return (
            f"{sampled.judged} of {sampled.rows} sampled rows judged, each the token its "
            "uniform selects (the others lie within float32 rounding of a decision)"
        )

    def sample_checked(
        self,
        session: SandboxSession,
        case: dict[str, Any],
        batches: list[tuple[torch.Tensor, torch.Tensor]],
        with_probs: bool,
        sampled: Sampled,
    ) -> CallTiming:
        """One exchange: ``sample`` (and ``probs``) on each batch in turn, in the sandbox; every
        output is read back and judged here. Fills ``sampled``; raises CandidateFailure."""
        arena = Arena(session)
        calls = []
        for logits, packed in batches:
            rows, vocab = logits.shape
            call = {
                "logits": arena.put(logits),
                "batch": arena.put(packed),
                "tokens": arena.output("int64", rows),
            }
            if with_probs:
                call["probs"] = arena.output("float32", rows, vocab)
            calls.append(call)
        reply, timing = arena.exchange("sample", calls, self.timeout_s(case))
        for index, ((logits, packed), call) in enumerate(zip(batches, calls, strict=True)):
            note = diagnostic(reply, index)
            if with_probs:
                probs = arena.read(call["probs"])
                self._check_probs(probs, logits, packed, note)
                sampled.probs.append(probs)
            tokens = arena.read(call["tokens"])
            sampled.judged += self._check_tokens(tokens, logits, packed, note)
            sampled.rows += len(tokens)
            sampled.tokens.append(tokens)
        return timing

    def _check_probs(self, got, logits, packed, note: str) -> None:
        import torch

        rows, vocab = logits.shape
        want, unsure = (torch.from_numpy(a) for a in self.target_probs(logits, packed[:4].T))
        got = got.double()
        tolerance = self.spec.tolerance.get("float32", {"rtol": 1e-4, "atol": 1e-6})
        bad = ~((got - want).abs() <= tolerance["atol"] + tolerance["rtol"] * want)
        bad |= (want == 0) & (got != 0)
        bad &= ~unsure[:, None]
        if not bool(bad.any()):
            return
        if bool(got.isnan().all()):
            raise fail(f"probs() gave no output{': ' + note if note else ''}")
        # a token kept that the filters remove (or the reverse) is the root cause: name it first
        support = bad & ((want == 0) != (got == 0))
        row, token = (int(i) for i in (support if bool(support.any()) else bad).nonzero()[0])
        order = logits[row].argsort(descending=True).tolist()
        why = {
            (True, False): " (the filters remove it)",
            (False, True): " (the filters keep it)",
        }.get((float(want[row, token]) == 0, float(got[row, token]) == 0), "")
        raise fail(
            f"probs row {row} ({describe(packed, row)}): token {token} (logit rank "
            f"{order.index(token) + 1} of {vocab}) has probability {float(got[row, token]):.6g}, "
            f"expected {float(want[row, token]):.6g}{why}; {int(bad[row].sum())} tokens of this "
            f"row and {int(bad.any(dim=1).sum())} rows are wrong"
        )

    def _check_tokens(self, tokens, logits, packed, note: str) -> int:
        """Each judged row's token is the one its uniform selects (under any filtering float32
        rounding allows); returns the rows judged."""
        import torch

        rows, vocab = logits.shape
        if bool((tokens == POISON_INT64).all()):
            raise fail(f"sample() gave no tokens{': ' + note if note else ''}")
        outside = (tokens < 0) | (tokens >= vocab)
        if bool(outside.any()):
            row = int(outside.nonzero()[0])
            raise fail(f"sample() row {row}: token {int(tokens[row])} is not a token id")
        want, allowed, judged = (
            torch.from_numpy(a) for a in self.sample_expected(logits, packed[:4].T, packed[4])
        )
        wrong = judged & (tokens[:, None] != allowed).all(dim=1)
        if not bool(wrong.any()):
            return int(judged.sum())
        row = int(wrong.nonzero()[0])
        got, token = int(tokens[row]), int(want[row])
        tally = f"{int(wrong.sum())} of {int(judged.sum())} judged rows differ"
        if float(packed[0, row]) == 0:
            raise fail(
                f"sample() row {row} (temperature 0, greedy): drew token {got}; the first "
                f"argmax of the logits is token {token}; {tally}"
            )
        probs, _ = self.target_probs(logits[row : row + 1], packed[:4, row : row + 1].T)
        cdf = probs[0].cumsum()

        def bin_of(t: int) -> str:
            return f"[{(cdf[t - 1] if t else 0.0) / cdf[-1]:.6f}, {cdf[t] / cdf[-1]:.6f})"

        drew = "which the filters remove" if probs[0, got] == 0 else f"whose bin is {bin_of(got)}"
        others = sorted(set(allowed[row].tolist()) - {token})
        rounding = f" (or {others}, which rounding of a filter's threshold allows)" * bool(others)
        raise fail(
            f"sample() row {row} ({describe(packed, row)}): uniform {float(packed[4, row]):.6f} "
            f"selects token {token}{rounding}, whose bin of the cumulative distribution (in "
            f"token-id order) is {bin_of(token)}; the sampler drew token {got}, {drew}; {tally}"
        )

    def _check_chi_square(self, timing, tokens, logits, packed, details) -> CaseResult:
        probs, _ = self.target_probs(logits[:1], packed[:4, :1].T)
        probs = probs[0].tolist()
        counts = [0] * len(probs)
        for token in tokens.tolist():
            counts[token] += 1
        statistic, dof, p_value = chi_square(counts, probs)
        details |= {"chi_square": round(statistic, 2), "dof": dof, "p_value": p_value}
        if p_value < CHI_SQUARE_P_FLOOR:
            worst = max(range(len(probs)), key=lambda t: abs(counts[t] - len(tokens) * probs[t]))
            raise fail(
                f"sampled frequencies differ from the target distribution "
                f"({describe(packed, 0)}): chi-square {statistic:.1f} on {dof} degrees of "
                f"freedom, p = {p_value:.3g}; token {worst} was drawn {counts[worst]} times in "
                f"{len(tokens)}, expected {len(tokens) * probs[worst]:.1f}",
                **details,
            )
        message = f"chi-square p = {p_value:.3g} over {len(tokens)} draws"
        return CaseResult(timing, message, details)

    @staticmethod
    def _check_repro(tokens: list[torch.Tensor], permutation: list[int]) -> None:
        first, again, shuffled = (t.tolist() for t in tokens)
        if again != first:
            row = next(r for r, (a, b) in enumerate(zip(first, again, strict=True)) if a != b)
            raise fail(
                f"the same batch sampled twice gave different tokens: row {row} drew "
                f"{first[row]}, then {again[row]}"
            )
        for position, row in enumerate(permutation):
            if shuffled[position] != first[row]:
                raise fail(
                    f"row {row} drew token {first[row]}, but the same row (same logits, "
                    f"settings and uniform) at position {position} of a shuffled batch drew "
                    f"{shuffled[position]}: a row's token must depend on that row only"
                )

    def _engine_case(self, session, case, rng) -> CaseResult:
        """The engine in this process samples every token with the candidate's sampler."""
        from grader.harnesses.remote_sampling import RemoteSampler

        config = {"block_size": 16, "num_kv_blocks": 256, "max_num_seqs": ENGINE_SHAPE[0]}
        requests = random_workload(case, rng)
        sampled, elapsed_ns = Sampled(), 0

        def sample(logits, packed, with_probs: bool):
            nonlocal elapsed_ns
            calls = len(sampled.tokens)
            timing = self.sample_checked(
                session, case, [(logits.float(), packed)], with_probs, sampled
            )
            elapsed_ns += timing.outside_ns
            return sampled.tokens[calls], sampled.probs[calls] if with_probs else None

        engine = tiny_engine(config, sampler=RemoteSampler(sample))
        drive(engine, requests, serial_bound(requests, 8192), clock_ns)
        timing = CallTiming(0, elapsed_ns)
        details = {"rows_judged": sampled.judged, "rows": sampled.rows}
        return CaseResult(timing, f"in the engine: {self._judged_note(sampled)}", details)

    def _throughput(self, session, case, rng) -> CaseResult:
        """The GPU tier's test: the engine serving a mixed workload (greedy and seeded sampled
        requests, all arriving at once) with the candidate's sampler drawing every token, on
        this worker's card (SmolLM2's shape) or, without one, the tiny model on the CPU; then
        with the engine's own ``TopKTopPSampler`` on the same workload. Output tokens/s and
        TTFT/TPOT percentiles of both, labelled with the device: a slow ``sample()`` is lost
        throughput. The candidate's sampler runs in its sandbox on the worker's CPU, each
        step's logits copied to it as float32; the engine's own samples where the logits are.

        Inside the clock each step's tokens are only checked to be token ids (the engine
        appends them); after it, every greedy row of every step must be the first argmax of
        its logits, and the kept steps (all of them on the CPU, ``judged_steps`` on a card)
        are judged by the oracle like every other test's. On the CPU the outputs must also
        equal the engine's own sampler's, which saw the same logits: greedy requests always,
        sampled ones unless a row lay within float32 rounding of a decision."""
        from engine.topk_topp_sampler import TopKTopPSampler
        from grader.harnesses.remote_sampling import RemoteSampler

        target = throughput_target()
        case = throughput_case(case, target)
        config = {key: int(case[key]) for key in THROUGHPUT_KEYS}
        requests = sampling_mix(random_workload(case, rng), case, rng)
        max_steps = serial_bound(requests, config["max_num_batched_tokens"])
        left = run_deadline(session, self.timeout_s(case))
        judged_steps = int(case.get("judged_steps", JUDGED_STEPS))
        runs: list[_SampleRecord] = []

        def linked(chosen: list[dict[str, Any]]) -> dict[str, Any]:
            runs.append(_SampleRecord(Reservoir(judged_steps, random.Random(rng.random()))))
            record = runs[-1]

            def sample(logits, packed, with_probs: bool):
                if with_probs:
                    raise ProblemError("the throughput run samples tokens only")
                return self._sample_recorded(session, logits, packed, left(), record), None

            return {"sampler": RemoteSampler(sample)}

        theirs = throughput_run(target, requests, config, max_steps, linked)
        record = runs[-1]
        sampled = self._judge_recorded(record)
        ours = throughput_run(
            target, requests, config, max_steps, lambda chosen: {"sampler": TopKTopPSampler()}
        )
        if target.device == "cpu":
            every_row = sampled.judged == sampled.rows == sum(len(g[1]) for g in record.greedy)
            check_same_tokens_as_engine(
                theirs, ours, requests, every_row,
                "the engine's own TopKTopPSampler's on the same logits (seeded: the same uniforms)",
            )  # fmt: skip
        message = throughput_message(theirs["figures"], ours["figures"], "TopKTopPSampler")
        message += (
            f"; {sampled.judged} of {sampled.rows} sampled rows in {len(record.steps.kept)} of "
            f"{record.steps.offered} steps judged by the oracle, and every greedy row; your "
            "sampler ran in its sandbox on the worker's CPU, each step's logits copied to it"
        )
        details = {
            "throughput": theirs["figures"],
            "engine": ours["figures"],
            "rows_judged": sampled.judged,
            "rows": sampled.rows,
        }
        return CaseResult(CallTiming(0, record.exchange_ns), message, details)

    def _sample_recorded(self, session, logits, packed, timeout_s: float, record) -> Any:
        """One step of the throughput run: the candidate's ``sample`` on the step's logits (a
        float32 copy on the CPU), its tokens checked to be token ids before the engine appends
        them; what judging them takes is recorded for after the run."""
        step = record.steps.offered
        host = logits.float().cpu()
        # The first argmax where the logits are (bfloat16 widens to float32 exactly): the
        # greedy rows' tokens, cheap enough to take at every step.
        greedy = packed[0] == 0
        first_argmax = logits.argmax(dim=-1).cpu()
        arena = Arena(session)
        rows, vocab = host.shape
        call = {"logits": arena.put(host), "batch": arena.put(packed)}
        call["tokens"] = arena.output("int64", rows)
        reply, timing = arena.exchange("sample", [call], timeout_s)
        record.exchange_ns += timing.outside_ns
        tokens = arena.read(call["tokens"])
        note = diagnostic(reply, 0)
        if bool((tokens == POISON_INT64).all()):
            raise fail(
                f"throughput run, step {step}: sample() gave no tokens{': ' * bool(note)}{note}"
            )
        outside = (tokens < 0) | (tokens >= vocab)
        if bool(outside.any()):
            row = int(outside.nonzero()[0])
            raise fail(
                f"throughput run, step {step}: sample() row {row}: token {int(tokens[row])} is "
                "not a token id"
            )
        record.greedy.append((step, greedy, first_argmax, tokens))
        record.steps.offer(lambda: (step, host.clone(), packed.clone(), tokens))
        return tokens

    def _judge_recorded(self, record) -> Sampled:
        """After the run: every greedy row of every step, then the kept steps in full."""
        for step, greedy, first_argmax, tokens in record.greedy:
            wrong = greedy & (tokens != first_argmax)
            if bool(wrong.any()):
                row = int(wrong.nonzero()[0])
                raise fail(
                    f"throughput run, step {step}: sample() row {row} (temperature 0, greedy) "
                    f"drew token {int(tokens[row])}; the first argmax of the logits is token "
                    f"{int(first_argmax[row])}"
                )
        sampled = Sampled()
        for step, logits, packed, tokens in sorted(record.steps.kept, key=lambda kept: kept[0]):
            try:
                sampled.judged += self._check_tokens(tokens, logits, packed, "")
            except CandidateFailure as failure:
                raise fail(f"throughput run, step {step}: {failure.message}") from None
            sampled.rows += len(tokens)
        return sampled

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        from engine.sampler import SamplingBatch

        sampler = candidate_object(entry)
        errors = []
        for call in request["calls"]:
            logits = tensor_view(shared, call["logits"])
            batch = SamplingBatch.unpack(tensor_view(shared, call["batch"]))
            error = None
            if "probs" in call:
                error = tensor_write(
                    shared, call["probs"], sampler.probs(logits.clone(), batch), "probs()"
                )
            tokens = sampler.sample(logits, batch)
            error = tensor_write(shared, call["tokens"], tokens, "sample()") or error
            errors.append(error)
        return {"ok": True, "errors": errors}
