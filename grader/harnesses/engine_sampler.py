"""The ``sampler`` kind: the candidate's ``Sampler`` turns logits into tokens, row by row.

Both halves draw the same logits, per-row settings and uniforms from one call seed (a fresh
seed per call, from the secret seed): nothing large crosses the channel but the ``probs``
output, which comes back through shared memory. The trusted side computes every row's exact
target distribution in float64 with the problem's ``oracle.py`` (``target_probs``) and checks:

* ``probs``: every value within tolerance of the target, and exactly 0 where the target is 0
  (a token a filter removes must never be drawn); the failing row's settings are named;
* ``sample`` on the same batch: each token has target probability > 0, greedy rows take an
  argmax of the logits;
* ``chisq`` tests: one row repeated thousands of times with fresh uniforms; the token counts
  must pass a chi-square goodness-of-fit test against the exact target (p above a floor);
* ``repro`` tests: the same batch twice gives the same tokens, and a shuffled batch gives each
  row the same token (a row's token depends on its own logits, settings and uniform only);
* ``engine`` tests: seeded sampling in the engine with the candidate's sampler gives the same
  tokens as the engine's own sampler.

The timed call samples a batch of 256 rows over a 49,152-token vocabulary with mixed settings
(every token checked against the engine's float32 reference distribution).
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
    fail,
    one_thread,
    outputs_mismatch,
    random_workload,
    serial_bound,
    tiny_engine,
)

if TYPE_CHECKING:
    import torch

    from grader.sandbox import SandboxSession

SETTINGS = ("temperature", "top_k", "top_p", "min_p")
# A correct sampler fails a chi-square test at this p-value once in a million runs.
CHI_SQUARE_P_FLOOR = 1e-6


def batch_inputs(case: dict[str, Any], seed: int) -> tuple[Any, list[dict[str, float]], list]:
    """(logits [rows, vocab] float32, per-row settings, uniforms) for one call: both halves."""
    import torch

    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    rows, vocab = int(case["rows"]), int(case["vocab"])
    fill = case.get("fill", "normal")
    if case.get("mode") == "chisq":
        logits = (torch.randn(1, vocab, generator=generator) * case.get("scale", 2.0)).expand(
            rows, vocab
        )
    elif fill == "ties":
        logits = torch.randint(0, 4, (rows, vocab), generator=generator).float()
    else:
        logits = torch.randn(rows, vocab, generator=generator) * case.get("scale", 2.0)
    logits = logits.contiguous()
    if fill == "neg_inf":
        masked = torch.rand(rows, vocab, generator=generator) < 0.7
        masked[:, 0] = False
        logits = logits.masked_fill(masked, float("-inf"))
        logits[0, 1:] = float("-inf")  # one row with a single finite logit
    choices = case["settings"]
    settings = [{name: rng.choice(choices[name]) for name in SETTINGS} for _ in range(rows)]
    if case.get("mode") == "chisq":
        settings = [settings[0]] * rows
    uniforms = [rng.random() for _ in range(rows)]
    return logits, settings, uniforms


def sampling_batch(settings: list[dict[str, float]], uniforms: list[float]) -> Any:
    from engine.config import SamplingParams
    from engine.sampler import SamplingBatch

    params = [
        SamplingParams(
            temperature=float(s["temperature"]),
            top_k=int(s["top_k"]),
            top_p=float(s["top_p"]),
            min_p=float(s["min_p"]),
        )
        for s in settings
    ]
    return SamplingBatch.build(params, uniforms, "cpu")


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


def describe(settings: dict[str, float]) -> str:
    return ", ".join(f"{name} {settings[name]}" for name in SETTINGS)


@register
class SamplerHarness(EngineHarness):
    kind = "sampler"
    version = "1"
    engine_classes = ("engine.sampler.TopKTopPSampler",)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.target_probs = oracle_load(spec.oracle_code, ("target_probs",))["target_probs"]

    def shared_bytes(self) -> int:
        sizes = [
            int(case["rows"]) * int(case["vocab"]) * 4
            for case in self.spec.tests
            if case.get("mode", "probs") == "probs"
        ]
        return max([mmap.PAGESIZE, *sizes])

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        mode = case.get("mode", "probs")
        seed = rng.randrange(2**62)
        if mode == "engine":
            return self._engine_case(session, case, rng, timed)
        logits, settings, uniforms = batch_inputs(case, seed)
        request = {"op": mode, "case": case, "seed": seed}
        if mode == "probs":
            session.shared[: logits.numel() * 4] = b"\xff" * (logits.numel() * 4)  # NaN bytes
        reply, timing = self.call(session, request, case, timed)
        tokens = self._tokens(reply, len(settings))
        if mode == "timed":
            self._check_support(tokens, logits, settings, self._float32_target(logits, settings))
            return CaseResult(timing)
        if mode == "chisq":  # one row repeated: its target once
            want = self.target_probs(logits[:1].double(), settings[:1]).expand(logits.shape)
        else:
            want = self.target_probs(logits.double(), settings)
        if mode == "probs":
            self._check_probs(session, logits, settings, want)
        self._check_support(tokens, logits, settings, want)
        if mode == "chisq":
            return self._check_chi_square(timing, tokens, want[0].tolist(), settings[0])
        if mode == "repro":
            self._check_repro(reply, tokens)
        return CaseResult(timing)

    def _tokens(self, reply: dict[str, Any], rows: int) -> list[int]:
        if reply.get("error"):
            raise fail(str(reply["error"]))
        tokens = reply.get("tokens")
        if not isinstance(tokens, list) or len(tokens) != rows:
            raise fail(f"sample() returned {type(tokens).__name__}; expected {rows} token ids")
        return tokens

    def _float32_target(self, logits, settings) -> torch.Tensor:
        from engine.sampler import TopKTopPSampler

        with one_thread():
            return TopKTopPSampler().probs(logits, sampling_batch(settings, [0.5] * len(settings)))

    def _check_probs(self, session, logits, settings, want) -> None:
        import torch

        rows, vocab = logits.shape
        got = torch.frombuffer(bytearray(session.shared[: rows * vocab * 4]), dtype=torch.float32)
        got = got.reshape(rows, vocab).double()
        tolerance = self.spec.tolerance.get("float32", {"rtol": 1e-4, "atol": 1e-6})
        bad = ~((got - want).abs() <= tolerance["atol"] + tolerance["rtol"] * want)
        bad |= (want == 0) & (got != 0)
        if not bool(bad.any()):
            return
        # a token kept that the filters remove (or the reverse) is the root cause: name it first
        support = bad & ((want == 0) != (got == 0))
        row, token = (int(i) for i in (support if bool(support.any()) else bad).nonzero()[0])
        order = logits[row].argsort(descending=True).tolist()
        why = {
            (True, False): " (the filters remove it)",
            (False, True): " (the filters keep it)",
        }.get((float(want[row, token]) == 0, float(got[row, token]) == 0), "")
        raise fail(
            f"probs row {row} ({describe(settings[row])}): token {token} (logit rank "
            f"{order.index(token) + 1} of {vocab}) has probability {float(got[row, token]):.6g}, "
            f"expected {float(want[row, token]):.6g}{why}; {int(bad[row].sum())} tokens of this "
            f"row and {int(bad.any(dim=1).sum())} rows are wrong"
        )

    def _check_support(self, tokens, logits, settings, want) -> None:
        vocab = logits.shape[1]
        for row, token in enumerate(tokens):
            if not isinstance(token, int) or not 0 <= token < vocab:
                raise fail(f"sample() row {row}: token {token!r} is not a token id")
            if settings[row]["temperature"] == 0:
                if logits[row, token] != logits[row].max():
                    raise fail(
                        f"sample() row {row} (temperature 0, greedy): token {token} is not the "
                        f"argmax of the logits ({int(logits[row].argmax())})"
                    )
            elif want[row, token] <= 0:
                raise fail(
                    f"sample() row {row} ({describe(settings[row])}): drew token {token}, "
                    "which the filters remove (target probability 0)"
                )

    def _check_chi_square(self, timing, tokens, probs, settings) -> CaseResult:
        counts = [0] * len(probs)
        for token in tokens:
            counts[token] += 1
        statistic, dof, p_value = chi_square(counts, probs)
        details = {"chi_square": round(statistic, 2), "dof": dof, "p_value": p_value}
        if p_value < CHI_SQUARE_P_FLOOR:
            worst = max(
                range(len(probs)),
                key=lambda t: abs(counts[t] - len(tokens) * probs[t]),
            )
            raise fail(
                f"sampled frequencies differ from the target distribution ({describe(settings)}): "
                f"chi-square {statistic:.1f} on {dof} degrees of freedom, p = {p_value:.3g}; "
                f"token {worst} was drawn {counts[worst]} times in {len(tokens)}, expected "
                f"{len(tokens) * probs[worst]:.1f}",
                **details,
            )
        return CaseResult(timing, f"chi-square p = {p_value:.3g} over {len(tokens)} draws", details)

    def _check_repro(self, reply, tokens) -> None:
        again, permutation, shuffled = reply.get("again"), reply.get("permutation"), None
        if again != tokens:
            raise fail("the same batch sampled twice gave different tokens")
        shuffled = reply.get("shuffled")
        if not isinstance(permutation, list) or not isinstance(shuffled, list):
            raise fail("the sandbox returned no shuffled batch")
        for position, row in enumerate(permutation):
            if shuffled[position] != tokens[row]:
                raise fail(
                    f"row {row} drew token {tokens[row]}, but the same row (same logits, "
                    f"settings and uniform) at position {position} of a shuffled batch drew "
                    f"{shuffled[position]}: a row's token must depend on that row only"
                )

    def _engine_case(self, session, case, rng, timed) -> CaseResult:
        config = {"block_size": 16, "num_kv_blocks": 256, "max_num_seqs": 16}
        requests = random_workload(case, rng)
        max_steps = serial_bound(requests, 8192)
        with one_thread():
            engine = tiny_engine(config)
            expected = drive(engine, requests, max_steps, clock_ns)["outputs"]
        request = {"op": "engine", "config": config, "requests": requests, "max_steps": max_steps}
        reply, timing = self.call(session, request, case, timed)
        outputs = reply.get("outputs")
        if not isinstance(outputs, dict):
            raise fail("the sandbox returned no outputs")
        wrong = outputs_mismatch(
            outputs, {rid: out["tokens"] for rid, out in expected.items()}, requests
        )
        if wrong:
            raise fail(wrong.replace("greedy decoding", "the engine's own sampler, same seeds"))
        return CaseResult(timing, "seeded tokens equal the engine's own sampler's")

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        reused = engine_class_used(entry, SamplerHarness.engine_classes)
        if reused:
            return {"ok": True, "elapsed_ns": 0, "reuses": reused}
        sampler = entry()
        if request["op"] == "engine":
            engine = tiny_engine(request["config"], sampler=sampler)
            return {
                "ok": True,
                **drive(engine, request["requests"], request["max_steps"], clock_ns),
            }
        return _serve_batch(sampler, request, shared)


def _serve_batch(sampler: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
    import torch

    logits, settings, uniforms = batch_inputs(request["case"], request["seed"])
    batch = sampling_batch(settings, uniforms)
    reply: dict[str, Any] = {"ok": True}
    if request["op"] == "probs":
        probs = sampler.probs(logits.clone(), batch)
        if type(probs) is not torch.Tensor or probs.shape != logits.shape:
            shape = list(getattr(probs, "shape", []))
            return reply | {
                "elapsed_ns": 0,
                "error": f"probs() returned {type(probs).__name__} of shape {shape}; expected "
                f"a torch.Tensor of shape {list(logits.shape)}",
            }
        view = torch.frombuffer(shared, dtype=torch.float32, count=logits.numel())
        view.copy_(probs.detach().reshape(-1).float())
    start_ns = clock_ns()
    tokens = sampler.sample(logits, batch)
    elapsed_ns = clock_ns() - start_ns
    reply |= {"elapsed_ns": elapsed_ns, "tokens": [int(t) for t in tokens.tolist()]}
    if request["op"] == "repro":
        reply["again"] = [int(t) for t in sampler.sample(logits, batch).tolist()]
        permutation = torch.randperm(len(settings), generator=torch.Generator().manual_seed(1))
        shuffled = sampling_batch(
            [settings[i] for i in permutation.tolist()], [uniforms[i] for i in permutation.tolist()]
        )
        reply["permutation"] = permutation.tolist()
        reply["shuffled"] = [int(t) for t in sampler.sample(logits[permutation], shuffled).tolist()]
    return reply
