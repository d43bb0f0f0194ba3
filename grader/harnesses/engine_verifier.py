"""The ``verifier`` kind: the candidate's speculative-decoding ``Verifier`` (rejection sampling).

Both halves draw the same draft and target distributions, draft tokens and uniforms from one
call seed. The trusted side applies the rule in float64 with the problem's ``oracle.py``
(``verify_expected``) and checks:

* ``exact`` tests: every row's accepted count and tokens equal the rule's for the same
  uniforms (rows whose uniform lies within float32 rounding of a decision are not judged);
  inputs include greedy (one-hot) rows, ``p == q``, draft tokens the target forbids, ``k = 1``;
* ``chisq`` tests: one (p, q) pair repeated 20,000 times with draft tokens drawn from q and
  fresh uniforms; the first emitted token must follow the target p (chi-square test);
* ``engine`` tests: the engine with speculative decoding (the target's first layer as the
  draft) and the candidate's verifier gives exactly the greedy tokens of plain decoding at
  temperature 0, and, seeded at temperature 0.8, the tokens of the engine's own verifier; a
  ``score`` test also reports the acceptance rate and the speed-up over plain decoding
  measured in the same sandbox, next to the reference verifier's acceptance rate.

The timed call is one end-to-end speculative run of a seeded workload (its tokens checked),
so the score is the candidate's end-to-end speed relative to the reference's.
"""

from __future__ import annotations

import mmap
import random
from typing import TYPE_CHECKING, Any

from grader.harnesses import register
from grader.harnesses.base import clock_ns, oracle_load
from grader.harnesses.engine_run import (
    CaseResult,
    EngineHarness,
    drive,
    engine_class_used,
    expected_tokens,
    fail,
    one_thread,
    outputs_mismatch,
    random_workload,
    serial_bound,
    tiny_engine,
)
from grader.harnesses.engine_sampler import CHI_SQUARE_P_FLOOR, chi_square

if TYPE_CHECKING:
    from grader.sandbox import SandboxSession


def verify_inputs(case: dict[str, Any], seed: int) -> tuple[Any, Any, Any, Any]:
    """(draft_tokens [B, k], draft_probs [B, k, V], target_probs [B, k + 1, V], uniforms)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    rows, k, vocab = int(case["rows"]), int(case["k"]), int(case["vocab"])
    fill = case.get("fill", "random")
    shape_rows = 1 if case.get("mode") == "chisq" else rows
    scale = float(case.get("scale", 2.0))
    target_logits = torch.randn(shape_rows, k + 1, vocab, generator=generator) * scale
    noise = torch.randn(shape_rows, k, vocab, generator=generator) * scale
    draft_logits = target_logits[:, :k] + float(case.get("mismatch", 1.0)) * noise
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
    if case.get("mode") == "chisq":
        target = target.expand(rows, k + 1, vocab).contiguous()
        draft = draft.expand(rows, k, vocab).contiguous()
    tokens = torch.multinomial(draft.reshape(-1, vocab), 1, generator=generator).reshape(rows, k)
    if fill == "forbidden":
        # the target gives some draft tokens probability 0
        forbid = torch.rand(rows, k, generator=generator) < 0.5
        rows_index, positions = forbid.nonzero(as_tuple=True)
        target[rows_index, positions, tokens[rows_index, positions]] = 0.0
        target = target / target.sum(-1, keepdim=True)
    uniforms = torch.rand(rows, k + 1, generator=generator, dtype=torch.float64)
    return tokens, draft.contiguous(), target.contiguous(), uniforms


@register
class VerifierHarness(EngineHarness):
    kind = "verifier"
    version = "1"
    engine_classes = ("engine.spec_decode.RejectionSampler",)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.verify_expected = oracle_load(spec.oracle_code, ("verify_expected",))[
            "verify_expected"
        ]

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        mode = case.get("mode", "exact")
        if mode == "engine":
            return self._engine_case(session, case, rng, timed)
        seed = rng.randrange(2**62)
        request = {"op": "verify", "case": case, "seed": seed}
        reply, timing = self.call(session, request, case, timed)
        draft_tokens, draft, target, uniforms = verify_inputs(case, seed)
        rows, k = draft_tokens.shape
        tokens, accepted = reply.get("tokens"), reply.get("num_accepted")
        if (
            not isinstance(tokens, list)
            or len(tokens) != rows
            or any(not isinstance(row, list) or len(row) != k + 1 for row in tokens)
            or not isinstance(accepted, list)
            or len(accepted) != rows
        ):
            raise fail(f"verify() must return tokens [{rows}, {k + 1}] and num_accepted [{rows}]")
        if mode == "chisq":
            return self._chi_square(timing, tokens, target[0, 0].tolist())
        want_tokens, want_accepted, ambiguous = self.verify_expected(
            draft_tokens, draft, target, uniforms
        )
        judged = 0
        for row in range(rows):
            if ambiguous[row]:
                continue
            judged += 1
            self._check_row(row, tokens[row], accepted[row], want_tokens[row], want_accepted[row],
                            draft_tokens, draft, target, uniforms)  # fmt: skip
        return CaseResult(timing, details={"rows_judged": judged, "rows": rows})

    def _check_row(self, row, got, got_accepted, want, want_accepted, draft_tokens, q, p, u):
        k = draft_tokens.shape[1]
        if got_accepted != want_accepted:
            i = min(got_accepted, want_accepted) if isinstance(got_accepted, int) else 0
            if i < k:
                x = int(draft_tokens[row, i])
                px, qx = float(p[row, i, x]), float(q[row, i, x])
                verdict = "accepted" if want_accepted > i else "rejected"
                raise fail(
                    f"row {row}: draft token {i} (id {x}) has p = {px:.4g}, q = {qx:.4g}, "
                    f"uniform {float(u[row, i]):.4g}, so it must be {verdict} (accept when "
                    f"u < min(1, p/q) = {min(1.0, px / qx) if qx else 1.0:.4g}); the verifier "
                    f"accepted {got_accepted} of {k} drafts, the rule accepts {want_accepted}"
                )
            raise fail(f"row {row}: num_accepted is {got_accepted!r}, expected {want_accepted}")
        if got != want:
            emitted = want[want_accepted]
            where = (
                f"the bonus token after all {k} drafts were accepted (sampled from p_{k})"
                if want_accepted == k
                else f"the token after rejecting draft {want_accepted} (sampled from the "
                "residual max(0, p - q), normalised)"
            )
            raise fail(
                f"row {row}: returned tokens {got}, expected {want}: {where} must be "
                f"{emitted}, by inverse CDF with uniform {float(u[row, k]):.4g}; positions after "
                "it are -1"
            )

    def _chi_square(self, timing, tokens, probs) -> CaseResult:
        first = [row[0] for row in tokens]
        if any(not isinstance(t, int) or not 0 <= t < len(probs) for t in first):
            raise fail("verify() returned a first token that is not a token id")
        counts = [0] * len(probs)
        for token in first:
            counts[token] += 1
        statistic, dof, p_value = chi_square(counts, probs)
        details = {"chi_square": round(statistic, 2), "dof": dof, "p_value": p_value}
        if p_value < CHI_SQUARE_P_FLOOR:
            worst = max(range(len(probs)), key=lambda t: abs(counts[t] - len(first) * probs[t]))
            raise fail(
                "the first emitted token does not follow the target distribution: chi-square "
                f"{statistic:.1f} on {dof} degrees of freedom, p = {p_value:.3g}; token {worst} "
                f"was emitted {counts[worst]} times in {len(first)}, the target expects "
                f"{len(first) * probs[worst]:.1f}",
                **details,
            )
        return CaseResult(timing, f"chi-square p = {p_value:.3g} over {len(first)} rows", details)

    def _engine_case(self, session, case, rng, timed) -> CaseResult:
        config = {
            "block_size": 16,
            "num_kv_blocks": 512,
            "max_num_seqs": 16,
            "num_speculative_tokens": int(case.get("num_speculative_tokens", 3)),
            "draft_layers": int(case.get("draft_layers", 1)),
        }
        requests = random_workload(case, rng)
        max_steps = 4 * serial_bound(requests, 8192)
        greedy = float(case.get("temperature", 0.0)) == 0.0
        if greedy:  # plain decoding, no draft: the tokens speculation must not change
            expected = expected_tokens(requests, {"block_size": 16})
            reference_rate = None
        else:
            expected, reference_rate = self._reference_run(requests, config, max_steps)
        request = {
            "op": "engine",
            "config": config,
            "requests": requests,
            "max_steps": max_steps,
            "plain": bool(case.get("score")),
        }
        reply, timing = self.call(session, request, case, timed)
        outputs = reply.get("outputs")
        if not isinstance(outputs, dict):
            raise fail("the sandbox returned no outputs")
        wrong = outputs_mismatch(outputs, expected, requests)
        if wrong:
            against = "plain greedy decoding" if greedy else "the engine's own verifier, same seeds"
            raise fail(wrong.replace("greedy decoding", against))
        if not case.get("score"):
            return CaseResult(timing)
        proposed, accepted = int(reply.get("proposed", 0)), int(reply.get("accepted", 0))
        rate = accepted / max(proposed, 1)
        speedup = int(reply.get("plain_ns", 0)) / max(timing.inside_ns, 1)
        details = {
            "acceptance_rate": round(rate, 4),
            "reference_acceptance_rate": reference_rate,
            "speedup_over_plain": round(speedup, 3),
        }
        message = (
            f"acceptance {rate:.1%} (reference {reference_rate:.1%}); "
            f"{speedup:.2f}x the speed of plain decoding"
        )
        return CaseResult(timing, message, details)

    def _reference_run(self, requests, config, max_steps) -> tuple[dict[str, list], float]:
        """Seeded tokens and acceptance rate of the engine's own verifier (trusted side)."""
        with one_thread():
            engine = tiny_engine(config)
            outputs = drive(engine, requests, max_steps, clock_ns)["outputs"]
        rate = engine.spec_accepted / max(engine.spec_proposed, 1)
        return {rid: out["tokens"] for rid, out in outputs.items()}, round(rate, 4)

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        reused = engine_class_used(entry, VerifierHarness.engine_classes)
        if reused:
            return {"ok": True, "elapsed_ns": 0, "reuses": reused}
        verifier = entry()
        if request["op"] == "engine":
            return _serve_engine(verifier, request)
        draft_tokens, draft, target, uniforms = verify_inputs(request["case"], request["seed"])
        start_ns = clock_ns()
        tokens, accepted = verifier.verify(draft_tokens, draft, target, uniforms)
        elapsed_ns = clock_ns() - start_ns
        return {
            "ok": True,
            "elapsed_ns": elapsed_ns,
            "tokens": [[int(t) for t in row] for row in tokens.tolist()],
            "num_accepted": [int(n) for n in accepted.tolist()],
        }


def _serve_engine(verifier: Any, request: dict[str, Any]) -> dict[str, Any]:
    config, requests, max_steps = request["config"], request["requests"], request["max_steps"]
    reply: dict[str, Any] = {"ok": True}
    if request.get("plain"):
        plain = config | {"num_speculative_tokens": 0, "draft_layers": 0}
        reply["plain_ns"] = drive(tiny_engine(plain), requests, max_steps, clock_ns)["elapsed_ns"]
    engine = tiny_engine(config, verifier=verifier)
    result = drive(engine, requests, max_steps, clock_ns)
    return reply | result | {"proposed": engine.spec_proposed, "accepted": engine.spec_accepted}
