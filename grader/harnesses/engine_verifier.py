"""The ``verifier`` kind: the candidate's speculative-decoding ``Verifier`` (rejection sampling).

The trusted side draws the draft and target distributions, draft tokens and uniforms from the
secret seed and keeps them; the sandbox receives them through the shared memory and returns
the candidate's ``tokens`` and ``num_accepted`` there, nothing else
(``grader/harnesses/remote.py``). The trusted side judges every row of every call:

* its shape, always: the first ``num_accepted`` tokens are the drafts, then one token with
  positive weight in the distribution it is drawn from (the residual ``max(0, p - q)`` at a
  rejection, ``p_k`` after ``k`` acceptances), then ``-1``;
* the rule, on every row no float32 rounding can change: the same ``num_accepted`` and tokens
  as the problem's ``oracle.py`` (``verify_expected``, float64) for the same uniforms. A row
  whose uniform lies within 1e-5 (relative) of ``p / q`` or within 2e-6 of the total from a
  bin edge of the inverse CDF is not judged, in the tests and in the timed calls alike.

Tests: ``exact`` (greedy one-hot rows, ``p == q``, draft tokens the target forbids, ``k = 1``,
a 32,000-token vocabulary), ``chisq`` (one (p, q) pair repeated 20,000 times with draft tokens
drawn from q and fresh uniforms: every row judged, and the first emitted token must follow the
target p by a chi-square test), and ``engine``: the engine runs in the trusted process with
``RemoteVerifier``, which sends every verification to the candidate's verifier and judges it
before the engine appends its tokens. At temperature 0 the tokens must be plain greedy
decoding's; the ``score`` test reports the acceptance rate and tokens per verification as the
trusted engine counted them, next to the engine's own verifier's on the same workload, and the
speed-up over plain decoding timed by the trusted clock.

The timed call is ``calls`` back-to-back ``verify`` calls in one exchange, each on fresh
inputs (16 rows, 4 drafts, 32,000 tokens: :func:`rolled_inputs`), every row judged; it is timed
by the trusted clock alone, from waking the sandbox to its reply.
"""

from __future__ import annotations

import mmap
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import CandidateFailure, clock_ns, oracle_load
from grader.harnesses.contract import CallTiming
from grader.harnesses.engine_run import (
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
from grader.harnesses.engine_sampler import CHI_SQUARE_P_FLOOR, chi_square, gpu_vocab
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

# The engine tests' speculative tokens per step and vocabulary (the tiny model's); the engine
# verifies one sequence per call.
ENGINE_K, ENGINE_VOCAB = 3, 10240
# The throughput test's engine sizes (EngineConfig fields).
THROUGHPUT_KEYS = (
    "block_size",
    "num_kv_blocks",
    "max_num_seqs",
    "max_num_batched_tokens",
    "num_speculative_tokens",
    "draft_layers",
)
# Verifications of a throughput run judged in full by the oracle, after the run, unless the
# case says: on the CPU (the tiny model, a few hundred) every one.
JUDGED_CALLS = 4096

Inputs = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor", "torch.Tensor"]


def verify_inputs(case: dict[str, Any], seed: int) -> Inputs:
    """(draft_tokens [B, k], draft_probs [B, k, V], target_probs [B, k + 1, V], uniforms)."""
    import torch

    from engine.sampler import sample_inverse_cdf

    generator = torch.Generator().manual_seed(seed)
    rows, k, vocab = int(case["rows"]), int(case["k"]), int(case["vocab"])
    fill = case.get("fill", "random")
    shape_rows = 1 if case.get("mode") == "chisq" else rows
    scale = float(case.get("scale", 2.0))
    # in place: every temporary of this size is fresh memory, and its page faults cost more
    # than drawing it
    target_logits = torch.randn(shape_rows, k + 1, vocab, generator=generator).mul_(scale)
    draft_logits = torch.randn(shape_rows, k, vocab, generator=generator)
    draft_logits.mul_(scale * float(case.get("mismatch", 1.0))).add_(target_logits[:, :k])
    if fill == "onehot":
        agree = torch.rand(shape_rows, k, generator=generator) < 0.7
        target_top = target_logits.argmax(-1)
        draft_top = torch.where(agree, target_top[:, :k], draft_logits.argmax(-1))
        target = torch.nn.functional.one_hot(target_top, vocab).float()
        draft = torch.nn.functional.one_hot(draft_top, vocab).float()
    else:
        target, draft = target_logits.softmax(-1), draft_logits.softmax(-1)
        if fill == "equal":
            draft = target[:, :k].clone()
    # draft tokens drawn from q (by inverse CDF: torch.multinomial takes seconds for 20,000 rows)
    draws = torch.rand(rows * k, generator=generator, dtype=torch.float64)
    if shape_rows == rows:
        tokens = sample_inverse_cdf(draft.reshape(-1, vocab), draws).reshape(rows, k)
    else:  # one row repeated: its cumulative distribution once
        tokens = sample_inverse_cdf(draft[0].repeat(rows, 1), draws).reshape(rows, k)
    if case.get("mode") == "chisq":
        target = target.expand(rows, k + 1, vocab).contiguous()
        draft = draft.expand(rows, k, vocab).contiguous()
    if fill == "forbidden":
        # the target gives some draft tokens probability 0
        forbid = torch.rand(rows, k, generator=generator) < 0.5
        rows_index, positions = forbid.nonzero(as_tuple=True)
        target[rows_index, positions, tokens[rows_index, positions]] = 0.0
        target = target / target.sum(-1, keepdim=True)
    uniforms = torch.rand(rows, k + 1, generator=generator, dtype=torch.float64)
    return tokens, draft.contiguous(), target.contiguous(), uniforms


def rolled_inputs(pool: Inputs, rows: int, seed: int) -> Inputs:
    """Fresh inputs from a pool of drawn distributions, for a fifth of the cost of drawing them:
    ``rows`` of its rows at random, each rolled along the vocabulary by its own random shift,
    with fresh draft tokens drawn from q and fresh uniforms. No two calls see the same tensors,
    and knowing the pool saves a verifier nothing: a rolled row's sums are new sums."""
    import torch

    from engine.sampler import sample_inverse_cdf

    _, pool_draft, pool_target, _ = pool
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(pool_draft.shape[0], generator=generator)[:rows].tolist()
    k, vocab = pool_draft.shape[1:]
    shifts = torch.randint(vocab, (rows,), generator=generator).tolist()
    draft = torch.stack([pool_draft[r].roll(s, -1) for r, s in zip(chosen, shifts, strict=True)])
    target = torch.stack([pool_target[r].roll(s, -1) for r, s in zip(chosen, shifts, strict=True)])
    draws = torch.rand(rows * k, generator=generator, dtype=torch.float64)
    tokens = sample_inverse_cdf(draft.reshape(-1, vocab), draws).reshape(rows, k)
    uniforms = torch.rand(rows, k + 1, generator=generator, dtype=torch.float64)
    return tokens, draft, target, uniforms


def exchange_bytes(rows: int, k: int, vocab: int, calls: int) -> int:
    """Shared memory one exchange of ``calls`` verifications of this size takes."""
    one = slot_bytes("int64", rows, k) + slot_bytes("float32", rows, k, vocab)
    one += slot_bytes("float32", rows, k + 1, vocab) + slot_bytes("float64", rows, k + 1)
    one += slot_bytes("int64", rows, k + 1) + slot_bytes("int64", rows)
    return calls * one


@dataclass
class Verified:
    """One case's verifications, read back and judged: outputs per call, rows judged."""

    tokens: list[torch.Tensor] = field(default_factory=list)
    num_accepted: list[torch.Tensor] = field(default_factory=list)
    rows: int = 0
    judged: int = 0


@dataclass
class _VerifyRecord:
    """One throughput run's record of the candidate's verifications, judged after the run."""

    calls: Reservoir
    exchange_ns: int = 0


def _verify_call(arena: Arena, draft_tokens, draft, target, uniforms) -> dict[str, Any]:
    """One ``verify`` call's inputs put in the shared memory, with its two outputs' places."""
    rows, k = draft_tokens.shape
    return {
        "draft_tokens": arena.put(draft_tokens),
        "draft_probs": arena.put(draft),
        "target_probs": arena.put(target),
        "uniforms": arena.put(uniforms),
        "tokens": arena.output("int64", rows, k + 1),
        "num_accepted": arena.output("int64", rows),
    }


@register
class VerifierHarness(EngineHarness):
    kind = "verifier"
    version = "2"
    # The interfaces and data types (the engine's own verifier is not there to import).
    sandbox_paths = (
        "engine/__init__.py",
        "engine/config.py",
        "engine/sampler.py",
        "engine/spec_decode.py",
    )

    def __init__(self, spec) -> None:
        super().__init__(spec)
        oracle = oracle_load(spec.oracle_code, ("verify_expected", "emitted_weights"))
        self.verify_expected = oracle["verify_expected"]
        self.emitted_weights = oracle["emitted_weights"]
        #: a case's drawn distributions, for cases that take their rows from a pool
        self.pools: dict[str, Inputs] = {}

    def shared_bytes(self) -> int:
        sizes = [exchange_bytes(1, ENGINE_K, ENGINE_VOCAB, 1)]
        for case in [*self.spec.tests, self.spec.benchmark]:
            if case.get("throughput"):  # one sequence's verification, on the CPU or a card
                k = max(int(case["num_speculative_tokens"]), int(case.get("on_gpu", {}).get(
                    "num_speculative_tokens", 0)))  # fmt: skip
                vocab = max(ENGINE_VOCAB, gpu_vocab() if "on_gpu" in case else 0)
                sizes.append(exchange_bytes(1, k, vocab, 1))
            elif case.get("mode") != "engine":
                rows, k, vocab = int(case["rows"]), int(case["k"]), int(case["vocab"])
                sizes.append(exchange_bytes(rows, k, vocab, int(case.get("calls", 1))))
        return max(sizes)

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
        if case.get("mode") == "engine":
            return self._engine_case(session, case, rng)
        inputs = [self._inputs(case, rng) for _ in range(int(case.get("calls", 1)))]
        verified = Verified()
        timing = self.verify_checked(session, case, inputs, verified)
        details = {"rows_judged": verified.judged, "rows": verified.rows}
        if case.get("mode") == "chisq":
            return self._chi_square(timing, verified.tokens[0], inputs[0][2][0, 0], details)
        message = (
            f"{verified.judged} of {verified.rows} rows judged (the others lie within float32 "
            "rounding of a decision)"
        )
        return CaseResult(timing, message, details)

    def _inputs(self, case: dict[str, Any], rng: random.Random) -> Inputs:
        """Fresh inputs for one call: drawn, or rolled from the case's pool when it has one."""
        if not case.get("pool"):
            return verify_inputs(case, rng.randrange(2**62))
        if case["name"] not in self.pools:
            pool_case = case | {"rows": int(case["rows"]) * int(case["pool"])}
            self.pools[case["name"]] = verify_inputs(pool_case, rng.randrange(2**62))
        return rolled_inputs(self.pools[case["name"]], int(case["rows"]), rng.randrange(2**62))

    def verify_checked(
        self,
        session: SandboxSession,
        case: dict[str, Any],
        inputs: list[Inputs],
        verified: Verified,
    ) -> CallTiming:
        """One exchange: ``verify`` on each input in turn, in the sandbox; every row is read
        back and judged here. Fills ``verified``; raises CandidateFailure."""
        arena = Arena(session)
        calls = []
        for draft_tokens, draft, target, uniforms in inputs:
            calls.append(_verify_call(arena, draft_tokens, draft, target, uniforms))
        reply, timing = arena.exchange("verify", calls, self.timeout_s(case))
        for index, (call, call_inputs) in enumerate(zip(calls, inputs, strict=True)):
            tokens, accepted = arena.read(call["tokens"]), arena.read(call["num_accepted"])
            verified.judged += self._check(tokens, accepted, call_inputs, diagnostic(reply, index))
            verified.rows += len(accepted)
            verified.tokens.append(tokens)
            verified.num_accepted.append(accepted)
        return timing

    def _check(self, tokens, accepted, inputs: Inputs, note: str) -> int:
        """Every row's shape, and the rule on the rows rounding cannot change; returns those."""
        import torch

        draft_tokens, q, p, u = inputs
        rows, k = draft_tokens.shape
        vocab = p.shape[-1]
        self._check_shape(tokens, accepted, draft_tokens, note)
        weights = torch.from_numpy(self.emitted_weights(q, p, accepted))
        emitted = tokens.gather(1, accepted[:, None])[:, 0]
        in_vocab = (emitted >= 0) & (emitted < vocab)
        impossible = ~in_vocab | (
            weights.gather(1, emitted.clamp(0, vocab - 1)[:, None])[:, 0] <= 0
        )
        if bool(impossible.any()):
            row = int(impossible.nonzero()[0])
            n, token = int(accepted[row]), int(emitted[row])
            source = (
                f"p_{k}, as the bonus token after all {k} drafts"
                if n == k
                else f"the residual max(0, p - q) at draft {n}"
            )
            raise fail(
                f"row {row}: after {n} accepted drafts the verifier emitted token {token}, "
                + (
                    "which has weight 0 where it must be sampled from "
                    if in_vocab[row]
                    else "which is not a token id; one token must follow them, sampled from "
                )
                + source
            )
        want_tokens, want_accepted, ambiguous = (
            torch.from_numpy(a) for a in self.verify_expected(draft_tokens, q, p, u)
        )
        judged = ~ambiguous
        wrong = judged & ((accepted != want_accepted) | (tokens != want_tokens).any(dim=1))
        if bool(wrong.any()):
            row = int(wrong.nonzero()[0])
            self._explain(row, tokens[row].tolist(), int(accepted[row]), want_tokens[row].tolist(),
                          int(want_accepted[row]), inputs)  # fmt: skip
        return int(judged.sum())

    @staticmethod
    def _check_shape(tokens, accepted, draft_tokens, note: str) -> None:
        import torch

        rows, k = draft_tokens.shape
        bad = (accepted < 0) | (accepted > k)
        if bool(bad.any()):
            row = int(bad.nonzero()[0])
            value = int(accepted[row])
            if value == POISON_INT64:
                raise fail(f"verify() gave no output{': ' + note if note else ''}")
            raise fail(f"row {row}: num_accepted is {value}, expected a count from 0 to {k}")
        positions = torch.arange(k + 1)[None, :]
        padded = torch.cat([draft_tokens, draft_tokens.new_full((rows, 1), -1)], dim=1)
        prefix = positions < accepted[:, None]
        after = positions > accepted[:, None]
        wrong = (prefix & (tokens != padded)) | (after & (tokens != -1))
        if bool(wrong.any()):
            row, position = (int(i) for i in wrong.nonzero()[0])
            n = int(accepted[row])
            raise fail(
                f"row {row}: num_accepted is {n}, so tokens must be the {n} accepted drafts, one "
                f"more token, then -1; got {tokens[row].tolist()} (position {position})"
            )

    @staticmethod
    def _explain(row, got, got_accepted, want, want_accepted, inputs: Inputs):
        draft_tokens, q, p, u = inputs
        k = draft_tokens.shape[1]
        if got_accepted != want_accepted:
            i = min(got_accepted, want_accepted)
            x = int(draft_tokens[row, i])
            px, qx = float(p[row, i, x]), float(q[row, i, x])
            verdict = "accepted" if want_accepted > i else "rejected"
            raise fail(
                f"row {row}: draft token {i} (id {x}) has p = {px:.4g}, q = {qx:.4g}, "
                f"uniform {float(u[row, i]):.4g}, so it must be {verdict} (accept when "
                f"u < min(1, p/q) = {min(1.0, px / qx) if qx else 1.0:.4g}); the verifier "
                f"accepted {got_accepted} of {k} drafts, the rule accepts {want_accepted}"
            )
        where = (
            f"the bonus token after all {k} drafts were accepted (sampled from p_{k})"
            if want_accepted == k
            else f"the token after rejecting draft {want_accepted} (sampled from the "
            "residual max(0, p - q), normalised)"
        )
        raise fail(
            f"row {row}: returned tokens {got}, expected {want}: {where} must be "
            f"{want[want_accepted]}, by inverse CDF with uniform {float(u[row, k]):.4g} over the "
            "cumulative weights in token-id order; positions after it are -1"
        )

    def _chi_square(self, timing, tokens, probs, details) -> CaseResult:
        probs = probs.tolist()
        counts = [0] * len(probs)
        for token in tokens[:, 0].tolist():
            counts[token] += 1
        statistic, dof, p_value = chi_square(counts, probs)
        draws = len(tokens)
        details |= {"chi_square": round(statistic, 2), "dof": dof, "p_value": p_value}
        if p_value < CHI_SQUARE_P_FLOOR:
            worst = max(range(len(probs)), key=lambda t: abs(counts[t] - draws * probs[t]))
            raise fail(
                "the first emitted token does not follow the target distribution: chi-square "
                f"{statistic:.1f} on {dof} degrees of freedom, p = {p_value:.3g}; token {worst} "
                f"was emitted {counts[worst]} times in {draws}, the target expects "
                f"{draws * probs[worst]:.1f}",
                **details,
            )
        return CaseResult(timing, f"chi-square p = {p_value:.3g} over {draws} rows", details)

    def _engine_case(self, session, case, rng) -> CaseResult:
        """The engine in this process verifies every draft with the candidate's verifier."""
        from grader.harnesses.remote_sampling import RemoteVerifier

        config = {
            "block_size": 16,
            "num_kv_blocks": 512,
            "max_num_seqs": 16,
            "num_speculative_tokens": ENGINE_K,
            "draft_layers": int(case.get("draft_layers", 1)),
        }
        requests = random_workload(case, rng)
        max_steps = 4 * serial_bound(requests, 8192)
        verified, elapsed_ns = Verified(), 0

        def verify(draft_tokens, draft_probs, target_probs, uniforms):
            nonlocal elapsed_ns
            inputs = (draft_tokens, draft_probs.float(), target_probs.float(), uniforms.double())
            timing = self.verify_checked(session, case, [inputs], verified)
            elapsed_ns += timing.outside_ns
            return verified.tokens[-1], verified.num_accepted[-1]

        engine = tiny_engine(config, verifier=RemoteVerifier(verify))
        started_ns = time.perf_counter_ns()
        drive(engine, requests, max_steps, clock_ns)
        speculative_ns = time.perf_counter_ns() - started_ns
        timing = CallTiming(0, elapsed_ns)
        details = {"rows_judged": verified.judged, "rows": verified.rows}
        note = f"{verified.judged} of {verified.rows} verifications judged"
        if not case.get("score"):
            return CaseResult(timing, note, details)
        plain = tiny_engine(config | {"num_speculative_tokens": 0, "draft_layers": 0})
        started_ns = time.perf_counter_ns()
        drive(plain, requests, max_steps, clock_ns)
        plain_ns = time.perf_counter_ns() - started_ns
        rate = engine.spec_accepted / max(engine.spec_proposed, 1)
        emitted = sum(int(n.sum()) + len(n) for n in verified.num_accepted) / max(verified.rows, 1)
        speedup = plain_ns / max(speculative_ns, 1)
        details |= {
            "acceptance_rate": round(rate, 4),
            "tokens_per_verification": round(emitted, 3),
            "speedup_over_plain": round(speedup, 3),
        }
        message = (
            f"acceptance {rate:.1%}, {emitted:.2f} tokens per verification, as the engine "
            f"counted them; {speedup:.2f}x the speed of plain decoding, every verification "
            f"crossing into the sandbox; {note}"
        )
        return CaseResult(timing, message, details)

    def _throughput(self, session, case, rng) -> CaseResult:
        """The GPU tier's test: the engine serving a mixed workload (greedy and seeded sampled
        requests, all arriving at once) by speculative decoding (the target's first
        ``draft_layers`` layers draft ``num_speculative_tokens`` tokens) with the candidate's
        verifier deciding every draft, on this worker's card (SmolLM2's shape) or, without
        one, the tiny model on the CPU; then with the engine's own ``RejectionSampler`` on the
        same workload. Output tokens/s, TTFT/TPOT percentiles and the acceptance rate the
        engine counted, of both, labelled with the device: a slow ``verify()`` is lost
        throughput. The candidate's verifier runs in its sandbox on the worker's CPU, each
        verification's distributions copied to it as float32 (the engine verifies one
        sequence per call); the engine's own verifies where the distributions are.

        Inside the clock each answer's shape is checked (accepted drafts, one token that is a
        token id, then -1: the engine appends them); after it, the kept verifications (all of
        them on the CPU, ``judged_calls`` on a card) are judged by the rule like every other
        test's. On the CPU the outputs must also equal the engine's own verifier's, which saw
        the same drafts: greedy requests always, sampled ones unless a row lay within float32
        rounding of a decision."""
        from engine.rejection_sampler import RejectionSampler
        from grader.harnesses.remote_sampling import RemoteVerifier

        target = throughput_target()
        case = throughput_case(case, target)
        config = {key: int(case[key]) for key in THROUGHPUT_KEYS}
        requests = sampling_mix(random_workload(case, rng), case, rng)
        max_steps = 4 * serial_bound(requests, config["max_num_batched_tokens"])
        left = run_deadline(session, self.timeout_s(case))
        judged_calls = int(case.get("judged_calls", JUDGED_CALLS))
        runs: list[_VerifyRecord] = []

        def linked(chosen: list[dict[str, Any]]) -> dict[str, Any]:
            runs.append(_VerifyRecord(Reservoir(judged_calls, random.Random(rng.random()))))
            record = runs[-1]

            def verify(draft_tokens, draft_probs, target_probs, uniforms):
                inputs = (
                    draft_tokens.cpu(),
                    draft_probs.float().cpu(),
                    target_probs.float().cpu(),
                    uniforms.double().cpu(),
                )
                return self._verify_recorded(session, inputs, left(), record)

            return {"verifier": RemoteVerifier(verify)}

        theirs = throughput_run(target, requests, config, max_steps, linked)
        record = runs[-1]
        verified = Verified()
        for call, inputs, tokens, accepted in sorted(record.calls.kept, key=lambda c: c[0]):
            try:
                verified.judged += self._check(tokens, accepted, inputs, "")
            except CandidateFailure as failure:
                raise fail(f"throughput run, verification {call}: {failure.message}") from None
            verified.rows += len(accepted)
        ours = throughput_run(
            target, requests, config, max_steps, lambda chosen: {"verifier": RejectionSampler()}
        )
        if target.device == "cpu":
            every_row = verified.judged == verified.rows == record.calls.offered
            check_same_tokens_as_engine(
                theirs, ours, requests, every_row,
                "the engine's own RejectionSampler's on the same drafts (seeded: the same uniforms)",
            )  # fmt: skip
        mine, own = theirs["figures"], ours["figures"]
        message = throughput_message(mine, own, "RejectionSampler")
        message += (
            f"; acceptance {mine['acceptance_rate']:.1%} (engine {own['acceptance_rate']:.1%}); "
            f"{verified.judged} of {record.calls.offered} verifications judged by the rule; "
            "your verifier ran in its sandbox on the worker's CPU, each verification's "
            "distributions copied to it"
        )
        details = {
            "throughput": mine,
            "engine": own,
            "rows_judged": verified.judged,
            "rows": record.calls.offered,
        }
        return CaseResult(CallTiming(0, record.exchange_ns), message, details)

    def _verify_recorded(self, session, inputs: Inputs, timeout_s: float, record):
        """One verification of the throughput run, its shape checked before the engine appends
        its tokens; the rule is judged after the run on the kept ones."""
        draft_tokens, draft, target, uniforms = inputs
        vocab = target.shape[-1]
        call_index = record.calls.offered
        arena = Arena(session)
        call = _verify_call(arena, draft_tokens, draft, target, uniforms)
        reply, timing = arena.exchange("verify", [call], timeout_s)
        record.exchange_ns += timing.outside_ns
        tokens, accepted = arena.read(call["tokens"]), arena.read(call["num_accepted"])
        try:
            self._check_shape(tokens, accepted, draft_tokens, diagnostic(reply, 0))
        except CandidateFailure as failure:
            raise fail(f"throughput run, verification {call_index}: {failure.message}") from None
        emitted = tokens.gather(1, accepted[:, None])[:, 0]
        outside = (emitted < 0) | (emitted >= vocab)
        if bool(outside.any()):
            row = int(outside.nonzero()[0])
            raise fail(
                f"throughput run, verification {call_index}: row {row}: after "
                f"{int(accepted[row])} accepted drafts the verifier emitted token "
                f"{int(emitted[row])}, which is not a token id"
            )
        record.calls.offer(lambda: (call_index, inputs, tokens, accepted))
        return tokens, accepted

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        verifier = candidate_object(entry)
        errors = []
        for call in request["calls"]:
            tokens, accepted = verifier.verify(
                tensor_view(shared, call["draft_tokens"]),
                tensor_view(shared, call["draft_probs"]),
                tensor_view(shared, call["target_probs"]),
                tensor_view(shared, call["uniforms"]),
            )
            error = tensor_write(shared, call["tokens"], tokens, "verify()'s tokens")
            error = (
                tensor_write(shared, call["num_accepted"], accepted, "verify()'s num_accepted")
                or error
            )
            errors.append(error)
        return {"ok": True, "errors": errors}
